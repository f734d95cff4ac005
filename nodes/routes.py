"""HTTP routes for the frontend extension: the long-video plan, served by the library's planner so the
timeline drawn on the node is exactly the clips the sampler will use."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from ..vidiff_model import VIDiffError
from ..vidiff_model.long_video import plan_clips

MAX_PLAN_FRAMES = 100_000


async def long_video_plan(request: web.Request) -> web.Response:
    """GET /vidiff/plan?frames=N&clip_length=L&overlap=O -> {"clips": [{start, end, overlap, new_start}]}."""
    try:
        frames, clip_length, overlap = (int(request.query[k]) for k in ("frames", "clip_length", "overlap"))
    except (KeyError, ValueError):
        return web.json_response({"error": "frames, clip_length and overlap must be integers"}, status=400)
    if frames > MAX_PLAN_FRAMES:
        return web.json_response({"error": f"frames: at most {MAX_PLAN_FRAMES}"}, status=400)
    try:
        clips = plan_clips(frames, clip_length, overlap)
    except VIDiffError as e:
        return web.json_response({"error": str(e)}, status=400)
    return web.json_response({"clips": [{**asdict(c), "new_start": c.new_start} for c in clips]})


def register_routes() -> None:
    try:
        from server import PromptServer
    except ImportError:  # imported outside the server
        return
    if PromptServer.instance is not None:
        PromptServer.instance.routes.get("/vidiff/plan")(long_video_plan)
