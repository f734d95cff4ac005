"""Run API-format workflows on a ComfyUI server from the command line.

    python -m vidiff_model.remote run   --server URL --workflow workflows/api/dehaze.json --video IN.mp4 --out DIR
    python -m vidiff_model.remote run   --server URL --workflow long_video --video LONG.mp4 --out DIR \
                                        [--segment-frames N]   (a long video: segment by segment, resumable)
    python -m vidiff_model.remote batch --server URL --workflow workflows/api/dehaze.json --videos FOLDER --out DIR
    ... [--set NODE.INPUT=VALUE ...]   NODE: a node id, title or type; VALUE: JSON if it parses, else text

Errors are one line on stderr; exit codes: 0 done, 1 a prompt failed (rejected, node error, interrupted),
2 bad arguments or input files, 3 no server at the URL or the connection was lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .batch import list_videos, run_batch, summary_table, warn
from .client import ComfyClient
from .errors import RemoteError
from .model_files import check_files
from .node_packs import check_node_types
from .own_footage import takes_own_footage, use_own_video
from .progress import ProgressLine
from .segments import run_segments, segment_setup
from .workflow import (Prompt, apply_assignments, check_video, load_workflow, parse_assignment, resolve_workflow,
                       video_node)

DEFAULT_SERVER = "http://127.0.0.1:8188"


def _prepare(prompt: Prompt, args: argparse.Namespace, client: ComfyClient, video_node_id: str | None) -> Prompt:
    """The workflow with the --set values (an input the workflow leaves out is looked up on the server), once
    the server is known to have every file it names (all missing ones in one error; the --video slot aside)."""
    prompt = apply_assignments(prompt, [parse_assignment(text) for text in args.set], client.input_names)
    client.check()
    check_node_types(prompt, client.input_specs, args.workflow)
    check_files(prompt, client.input_options, args.workflow, ignore={video_node_id} if video_node_id else set(),
                folders=client.folders)
    return prompt


def cmd_run(args: argparse.Namespace) -> int:
    prompt = load_workflow(resolve_workflow(args.workflow))  # a UI workflow or a bad --video: refused up front
    video = check_video(args.video) if args.video else None
    if video is not None and takes_own_footage(prompt):  # a vidiff-mini template: the sample clip swapped out
        prompt = use_own_video(prompt, args.workflow, video.name)
    node = video_node(prompt, args.workflow, args.video_node) if video is not None else None
    client = ComfyClient(args.server)
    prompt = _prepare(prompt, args, client, node)
    if video is not None and node is not None:
        segmented = segment_setup(prompt, node, video, args.segment_frames, client, args.workflow)
        if segmented is not None:  # a long video: segment by segment, resumable
            setup, info, frames = segmented
            print(run_segments(client, prompt, setup, node, info, frames, Path(args.out), args.quiet, args.timeout))
            return 0
        prompt[node]["inputs"]["file"] = client.upload(video)
    label = video.name if video else Path(args.workflow).stem
    result = client.run(prompt, Path(args.out), ProgressLine(label, enabled=not args.quiet), args.timeout)
    for path in result.files:
        print(path)
    for where, texts in result.texts.items():
        for text in texts:
            print(f"{where}: " + "; ".join(" ".join(line.split()) for line in text.splitlines()))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    prompt = load_workflow(resolve_workflow(args.workflow))
    node = video_node(prompt, args.workflow, args.video_node)
    videos = list_videos(Path(args.videos), warn)
    client = ComfyClient(args.server)
    prompt = _prepare(prompt, args, client, node)
    items = run_batch(client, prompt, node, videos, Path(args.out), args.quiet, args.timeout)
    print(summary_table(items))
    if any(it.status == "not run" for it in items):
        print(f"error: {next(it.error for it in items if it.error and it.status == 'not run')}; "
              "rerun the same command to finish the batch", file=sys.stderr)
        return 3
    return 1 if any(it.status == "failed" for it in items) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vidiff_model.remote", description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=DEFAULT_SERVER, help=f"the ComfyUI server (default {DEFAULT_SERVER})")
    common.add_argument("--workflow", required=True, help="an API-format workflow, e.g. workflows/api/dehaze.json, "
                                                          "or a template's name (mini_dehaze)")
    common.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="set an input; NODE is a node id, title or type (repeatable)")
    common.add_argument("--out", required=True, help="folder the output files are downloaded into")
    common.add_argument("--video-node", help="the LoadVideo node to set, when the workflow has several")
    common.add_argument("--timeout", type=float, default=0, help="seconds per prompt before it is cancelled "
                                                                 "(default: no limit)")
    common.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    run = sub.add_parser("run", parents=[common], help="run a workflow once, on one video or none")
    run.add_argument("--video", help="a video to upload into the workflow's LoadVideo node; with a vidiff-mini "
                                     "template, it replaces the sample clip (resized to 128×128)")
    run.add_argument("--segment-frames", type=int, metavar="N",
                     help="a video longer than N frames (default 48) on a workflow with VIDiff Long Video "
                          "(autoregressive or overlap_guided) goes segment by segment: one prompt per segment, the "
                          "long-video state carried, each finished segment kept in OUT/<video>_segments/, a rerun "
                          "of the same command resumes; 0: always one prompt")
    run.set_defaults(func=cmd_run)
    batch = sub.add_parser("batch", parents=[common], help="run a workflow on every video of a folder (resumable)")
    batch.add_argument("--videos", required=True, help="folder of videos; one prompt each")
    batch.set_defaults(func=cmd_batch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RemoteError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: stopped by the user (a running prompt was cancelled on the server)", file=sys.stderr)
        return 130
