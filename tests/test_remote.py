"""The API client, `python -m vidiff_model.remote`, against a real ComfyUI server, run as a user runs it (a
subprocess): every API workflow of the pack end to end, the one-line errors, and resumable batches."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from comfy_harness import API_ALL, PEER_TEMPLATES, ROOT, ComfyServer, _free_port, comfyui_path, write_video
from remote_harness import JOB_WORKFLOW, cli, cli_popen, job_args, sha, write_videos

JOB = json.loads(JOB_WORKFLOW.read_text())
ID = {node["class_type"]: node_id for node_id, node in JOB.items()}  # the job's node ids, by type

pytestmark = pytest.mark.comfyui


def test_a_workflow_whose_custom_nodes_the_server_lacks_names_the_pack(server, tmp_path):
    """The IP-Adapter template on a server without IPAdapter_plus: one error naming the pack, its URL and every node
    type of it the workflow uses, before anything is queued or uploaded (exit 2, no traceback)."""
    out = cli("run", "--server", server.url, "--workflow", "style_ip_adapter", "--out", str(tmp_path / "out"))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "ComfyUI_IPAdapter_plus (IPAdapterAdvanced, IPAdapterModelLoader)" in out.stderr, out.stderr
    assert "https://github.com/cubiq/ComfyUI_IPAdapter_plus" in out.stderr


def test_the_client_imports_neither_comfyui_nor_torch():
    code = ("import sys, vidiff_model.remote.cli, vidiff_model.remote.__main__; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    assert not loaded & {"torch", "comfy", "comfy_api", "folder_paths", "nodes", "server", "numpy", "websocket"}


def _fast_sets(prompt: dict) -> list[str]:
    """--set values for a quick run: 1 step with one forward (cfgs 1), 8 sample-clip frames, long videos in clips
    of 4 sharing 1."""
    sets = []
    for node_id, node in prompt.items():
        if node["class_type"] == "VIDiffSampler":
            sets += [f"{node_id}.steps=1", f"{node_id}.video_cfg=1", f"{node_id}.text_cfg=1.0"]
        elif node["class_type"] == "VIDiffLoadSampleClip":
            sets.append(f"{node_id}.frames=8")
        elif node["class_type"] == "VIDiffLongVideo":
            sets += [f"{node_id}.clip_length=4", f"{node_id}.overlap=1"]
    return [a for s in sets for a in ("--set", s)]


@pytest.mark.parametrize("name", sorted(API_ALL))
def test_every_api_workflow_runs_through_the_client(request, server, tmp_path, name):
    if any(n["class_type"] == "VHS_BatchManager" for n in API_ALL[name].values()):
        pytest.skip("a Meta Batch template needs VideoHelperSuite, which this server lacks; "
                    "tests/test_meta_batch_templates.py runs it through the client on a server with it")
    if name in PEER_TEMPLATES:  # it needs a peer pack (IPAdapter_plus): the server that has it
        server = request.getfixturevalue("peer_server")
    prompt = API_ALL[name]  # offered or experimental, named as a template (mini_dehaze): the client finds the file
    args = ["run", "--server", server.url, "--workflow", name, "--out", str(tmp_path / "out"), *_fast_sets(prompt)]
    uploads = any(n["class_type"] == "LoadVideo" for n in prompt.values())
    if uploads:  # the README's workflows: the user's video, uploaded into the server's input folder
        video = tmp_path / f"upload_{name}.mp4"
        write_video(video, 8, 64, 48, 8)
        args += ["--video", str(video)]
    start = time.monotonic()
    out = cli(*args)
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"{name}: {time.monotonic() - start:.1f} s")
    if uploads:
        assert sha(server.workdir / "input" / video.name) == sha(video)
    files = [line for line in out.stdout.splitlines() if line.startswith(str(tmp_path))]
    saves = sum(n["class_type"] in ("SaveVideo", "SaveAnimatedWEBP") for n in prompt.values())
    assert len(files) >= saves > 0, out.stdout
    for f in files:  # byte for byte what the server saved
        rel = f[len(str(tmp_path / "out")) + 1:]
        assert sha(server.workdir / "output" / rel) == sha(tmp_path / "out" / rel)
    if any(n["class_type"] == "VIDiffVideoMetrics" for n in prompt.values()):
        assert "psnr" in out.stdout  # the nodes' text outputs are printed too
    if "long_video" in name:  # 8 frames in clips of 4 sharing 1: the pack's progress event says clip 3 of 3
        assert "clip 3/3" in out.stderr, out.stderr


def _saved(out: subprocess.CompletedProcess, prefix: str):
    """The frames of the file the run saved under `prefix` (SaveAnimatedWEBP: prefix_00001_.webp)."""
    from vidiff_model.video_io import read_video

    path = next(Path(line) for line in out.stdout.splitlines() if re.search(rf"/{prefix}_\d+_\.webp$", line))
    return read_video(path)


@pytest.mark.parametrize("name", ["mini_dehaze", "mini_recolor"])
def test_own_video_in_a_mini_template(server, tmp_path, name):
    """`--video` on a vidiff-mini template: your footage instead of the sample clip, resized to 128×128, the
    template's first 16 frames, its finish kept, no metrics against a clean clip that does not exist."""
    from vidiff_model.video_io import read_video

    video = tmp_path / f"mine_{name}.mp4"
    write_video(video, 20, 96, 64, 8)
    out = cli("run", "--server", server.url, "--workflow", name, "--video", str(video), "--out", str(tmp_path / "out"),
              "--set", "VIDiffSampler.steps=1", "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "psnr" not in out.stdout.lower(), out.stdout  # no clean reference: no metrics against one
    result, given = _saved(out, name), _saved(out, f"{name}_input")
    assert tuple(result.shape) == tuple(given.shape) == (16, 128, 128, 3)
    mine = read_video(video)[:16, :, 16:80]  # the centre 64×64 of 96×64, as ImageScale crops it
    if name == "mini_dehaze":  # your footage is the hazy input: no haze added (haze brightens towards the airlight)
        gap = (given.mean((0, 1, 2)) - mine.mean((0, 1, 2))).abs().max()
        assert gap < 0.04, (given.mean((0, 1, 2)), mine.mean((0, 1, 2)))
    else:  # recolouring takes gray frames: your video is made gray first
        assert (given - given.mean(-1, keepdim=True)).abs().max() < 0.03
        assert (mine - mine.mean(-1, keepdim=True)).abs().max() > 0.2


def test_missing_files_are_named_at_once_before_queueing(tmp_path):
    """A server without the full-size files: the client names every one, with its folder and source, in one
    error, and queues nothing."""
    bare = ComfyServer(tmp_path / "bare").start()
    try:
        video = tmp_path / "mine.mp4"
        write_video(video, 4, 64, 48, 8)
        out = cli("run", "--server", bare.url, "--workflow", "style_image", "--video", str(video),
                  "--out", str(tmp_path / "out"))
        assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr, out.stderr
        comfy = comfyui_path().resolve()  # absolute paths; the server's own models folders come first
        for needle in ("needs 5 files", "the server's folders", f"{comfy}/models/text_encoders/clip_l.safetensors",
                       f"{comfy}/models/vae/vae-ft-mse-840000-ema-pruned.safetensors",
                       f"{comfy}/models/clip_vision/clip-vit-large-patch14.safetensors",
                       f"{comfy}/models/vidiff/vidiff_sd15.safetensors", f"{bare.workdir.resolve()}/input/vidiff_style.png",
                       f"made, not downloaded: cd {ROOT} && ", " -m vidiff_model build --unet ",
                       "https://huggingface.co/stabilityai/sd-vae-ft-mse-original"):
            assert needle in out.stderr, out.stderr
        assert bare.get("/history") == {} and not (bare.workdir / "input" / video.name).exists()  # nothing sent
    finally:
        bare.stop()


def _one_line_error(out: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_error_no_server_at_the_url(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    out = cli("run", "--server", url, "--workflow", str(JOB_WORKFLOW), "--out", str(tmp_path), "--quiet")
    _one_line_error(out, 3, "no ComfyUI server at " + url)


def test_error_ui_workflow_instead_of_api(server, tmp_path):
    out = cli("run", "--server", server.url, "--workflow", "workflows/vidiff_recolor.json", "--out", str(tmp_path))
    _one_line_error(out, 2, "UI-format", "workflows/api/recolor.json")


def test_error_unknown_node_or_input_in_set(server, tmp_path):
    base = ["run", "--server", server.url, "--workflow", str(JOB_WORKFLOW), "--out", str(tmp_path)]
    line = _one_line_error(cli(*base, "--set", "Sampler.steps=3"), 2, "no node 'Sampler'")
    assert f"{ID['VIDiffSampler']} (VIDiffSampler)" in line and '1 "Source video" (LoadVideo)' in line  # listed
    line = _one_line_error(cli(*base, "--set", "VIDiffSampler.step=3"), 2, "has no input 'step'")
    assert "steps" in line and "text_cfg" in line and "long_video" in line  # optional inputs, from /object_info
    _one_line_error(cli(*base, "--set", "VIDiffSampler.source=3"), 2, f"connected to node {ID['VAEEncode']}")
    _one_line_error(cli(*base, "--set", "steps=3"), 2, "NODE.INPUT=VALUE")


def test_error_file_that_is_not_a_video(server, tmp_path):
    base = ["run", "--server", server.url, "--workflow", str(JOB_WORKFLOW), "--out", str(tmp_path)]
    renamed = tmp_path / "holiday.mp4"
    renamed.write_text("not a video")
    _one_line_error(cli(*base, "--video", str(renamed)), 2, str(renamed), "not a video")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    _one_line_error(cli(*base, "--video", str(notes)), 2, str(notes), "not a video")
    video = tmp_path / "real.mp4"
    write_video(video, 4, 64, 48, 8)
    still = tmp_path / "still.json"  # a workflow that loads an image: no slot for a video
    still.write_text(json.dumps({"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
                                 "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}))
    own = ["run", "--server", server.url, "--workflow", str(still), "--out", str(tmp_path)]
    _one_line_error(cli(*own, "--video", str(video)), 2, "no LoadVideo node", "LoadImage")


def test_error_prompt_rejected_by_the_server(server, tmp_path):
    out = cli("run", *job_args(server, "--out", str(tmp_path), "--set", "VIDiffSampler.steps=0"))
    _one_line_error(out, 1, "rejected", f"node {ID['VIDiffSampler']} (VIDiffSampler) input steps", "smaller than min of 1")


def test_error_node_fails_while_running(server, tmp_path):
    encode = ID["VIDiffInstructionEncode"]
    out = cli("run", *job_args(server, "--out", str(tmp_path), "--set", f"{encode}.instruction=" + "word " * 100))
    _one_line_error(out, 1, f"node {encode} (VIDiffInstructionEncode) failed", "InstructionError", "77")


def test_error_interrupted_run(server, tmp_path):
    import websocket

    watch = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId=watcher", timeout=300)
    try:  # vidiff.progress goes to every client: interrupt once the sampler has made a step
        proc = cli_popen("run", *job_args(server, "--out", str(tmp_path), "--set", "VIDiffSampler.steps=500",
                                          "--set", "VIDiffSampler.seed=77"))
        while True:
            raw = watch.recv()
            if isinstance(raw, str) and json.loads(raw)["type"] == "vidiff.progress":
                break
    finally:
        watch.close()
    server.post("/interrupt", {})
    stdout, stderr = proc.communicate(timeout=300)
    _one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), 1, "interrupted",
                    f"node {ID['VIDiffSampler']} (VIDiffSampler)")


def test_batch_is_resumable_and_reports_a_table(server, tmp_path):
    videos = write_videos(tmp_path / "videos", 2)
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    out_dir = tmp_path / "out"
    args = ["batch", *job_args(server, "--videos", str(tmp_path / "videos"), "--out", str(out_dir))]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "skipping" in first.stderr and "notes.txt" in first.stderr
    rows = {line.split()[0]: line.split() for line in first.stdout.splitlines()[1:-1]}
    assert set(rows) == {v.name for v in videos} and all(r[1] == "done" for r in rows.values())
    manifest = [json.loads(line) for line in (out_dir / "vidiff_batch.jsonl").read_text().splitlines()]
    assert [m["video"] for m in manifest] == [v.name for v in videos]
    outputs = {m["video"]: m["outputs"] for m in manifest}
    assert all(len(o) == 1 and (out_dir / o[0]).is_file() for o in outputs.values())
    before = {v: sha(out_dir / o[0]) for v, o in outputs.items()}
    history = len(server.get("/history"))

    again = cli(*args)  # nothing to do: no prompt queued, files untouched
    assert again.returncode == 0 and "2 skipped of 2 videos" in again.stdout, again.stdout
    assert len(server.get("/history")) == history
    assert before == {v: sha(out_dir / o[0]) for v, o in outputs.items()}

    (out_dir / outputs[videos[1].name][0]).unlink()  # a lost result is made again, the other kept
    third = cli(*args)
    assert third.returncode == 0 and "1 done, 1 skipped of 2 videos" in third.stdout, third.stdout
    assert len(server.get("/history")) == history + 1

    changed = cli(*args, "--set", "VIDiffSampler.seed=9")  # other settings: a different batch, all run
    assert changed.returncode == 0 and "2 done of 2 videos" in changed.stdout, changed.stdout
