"""HTTP routes: the long-video plan for the frontend extension, served by the library's planner so the timeline
drawn on the node is exactly the clips the sampler will use; what each template does and needs, for the template
browser's cards; and the server's folders, so the API client can name a missing file by the absolute path it
belongs in."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from ..vidiff_model import VIDiffError
from ..vidiff_model.long_video import plan_clips
from ..vidiff_model.remote.templates import TEMPLATES

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


PACK_ROOT = Path(__file__).resolve().parents[1]


async def folders(request: web.Request) -> web.Response:
    """GET /vidiff/folders -> {"models": {folder: [absolute paths, the first where new files go]}, "input": path,
    "pack": this pack's folder, "python": the server's interpreter (it has the pack's requirements)}."""
    import folder_paths

    models = {name: [str(Path(p).resolve()) for p in folder_paths.get_folder_paths(name)]
              for name in folder_paths.folder_names_and_paths if name not in ("custom_nodes", "configs")}
    return web.json_response({"models": models, "input": str(Path(folder_paths.get_input_directory()).resolve()),
                              "pack": str(PACK_ROOT), "python": sys.executable})


async def templates(request: web.Request) -> web.Response:
    """GET /vidiff/templates -> {"vidiff_<name>": {title, does, needs, badge, runs_on_cpu}}: what each template does
    and needs, for the template browser's cards (web/vidiff_templates.js); the frontend itself knows only names."""
    return web.json_response({f"vidiff_{name}": {"title": t.title, "does": t.does, "needs": t.needs, "badge": t.badge,
                                                 "runs_on_cpu": t.runs_on_cpu} for name, t in TEMPLATES.items()})


def register_routes() -> None:
    try:
        from server import PromptServer
    except ImportError:  # imported outside the server
        return
    if PromptServer.instance is not None:
        PromptServer.instance.routes.get("/vidiff/plan")(long_video_plan)
        PromptServer.instance.routes.get("/vidiff/folders")(folders)
        PromptServer.instance.routes.get("/vidiff/templates")(templates)
