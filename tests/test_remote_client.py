"""The API client's offline parts: --set parsing and addressing, video checks, the server's error texts in one
line, the batch manifest (tests/test_remote.py runs the client against a real server)."""

from __future__ import annotations

import json

import pytest

from vidiff_model.remote import (BatchItem, ComfyClient, Manifest, PromptFailed, UsageError, apply_assignments,
                                 check_video, parse_assignment)
from vidiff_model.remote.batch import fingerprint, summary_table
from vidiff_model.remote.client import execution_error_text, rejection_text

PROMPT = {
    "1": {"class_type": "LoadVideo", "inputs": {"file": "a.mp4"}, "_meta": {"title": "Source video"}},
    "8": {"class_type": "VIDiffSampler", "inputs": {"steps": 20, "source": ["1", 0]},
          "_meta": {"title": "VIDiffSampler"}},
    "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0]}, "_meta": {"title": "Decode v1.5"}},
    "10": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0]}, "_meta": {"title": "Decode v1.5"}},
}


def test_set_values_are_json_when_they_parse_and_nodes_go_by_id_title_or_type():
    sets = ["8.steps=4", "Source video.file=b c.mp4", "VIDiffSampler.seed=\"7\"", "8.video_cfg=1.5"]
    out = apply_assignments(PROMPT, [parse_assignment(s) for s in sets], lambda t: ["seed", "video_cfg"])
    assert out["8"]["inputs"] == {"steps": 4, "source": ["1", 0], "seed": "7", "video_cfg": 1.5}
    assert out["1"]["inputs"]["file"] == "b c.mp4" and PROMPT["8"]["inputs"]["steps"] == 20  # a copy
    assert parse_assignment("Sample clip (v.2).frames=8").node == "Sample clip (v.2)"  # dots in titles


@pytest.mark.parametrize("text, needle", [
    ("Decode v1.5.samples=1", "names 2 nodes (9 \"Decode v1.5\" (VAEDecode), 10"),
    ("VAEDecode.x=1", "names 2 nodes"),
    ("7.steps=1", "no node '7'"),
    ("8.stepz=1", "its inputs are: seed, source, steps"),
    ("8.source=3", "connected to node 1"),
    ("8.steps", "NODE.INPUT=VALUE"),
])
def test_set_errors_name_what_is_valid(text, needle):
    with pytest.raises(UsageError) as e:
        apply_assignments(PROMPT, [parse_assignment(text)], lambda t: ["seed"])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_video_check_by_extension_and_signature(tmp_path):
    mp4 = tmp_path / "a.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(32))
    mkv = tmp_path / "b.webm"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(32))
    assert check_video(mp4) == mp4 and check_video(mkv) == mkv
    for name, data, needle in [("c.mp4", b"hello world, not a video", "signature"), ("d.png", b"\x89PNG", "not .png"),
                               ("e", b"x", "without an extension")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UsageError, match="is not a video") as e:
            check_video(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and needle in str(e.value)
    with pytest.raises(UsageError, match="no such video file"):
        check_video(tmp_path / "missing.mp4")


def test_server_errors_become_one_line_with_node_and_input_named():
    body = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                      "details": ""},
            "node_errors": {"8": {"class_type": "VIDiffSampler", "errors": [
                {"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "steps",
                 "extra_info": {"input_name": "steps"}}]}}}
    assert rejection_text(PROMPT, body) == ("Prompt outputs failed validation; node 8 (VIDiffSampler) input steps: "
                                            "Value 0 smaller than min of 1")
    data = {"node_id": "9", "node_type": "VAEDecode", "exception_type": "vidiff_model.errors.LatentError",
            "exception_message": "source: 16 channels\nmore"}
    assert execution_error_text(PROMPT, data) == \
        'node 9 "Decode v1.5" (VAEDecode) failed: LatentError: source: 16 channels'


def test_manifest_keeps_finished_videos_of_the_same_settings(tmp_path):
    manifest, settings = Manifest(tmp_path), fingerprint(PROMPT)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "out.mp4").write_bytes(b"x")
    manifest.record(BatchItem("a.mp4", "done", 1.0, ["a/out.mp4"], settings=settings))
    manifest.record(BatchItem("b.mp4", "failed", 1.0, error="boom", settings=settings))
    manifest.record(BatchItem("c.mp4", "done", 1.0, ["c/missing.mp4"], settings=settings))
    with open(manifest.path, "a") as f:
        f.write('{"video": "d.mp4", "sta')  # a line cut short by a crash
    assert set(manifest.finished(settings, tmp_path)) == {"a.mp4"}
    assert manifest.finished(fingerprint({**PROMPT, "x": {}}), tmp_path) == {}
    table = summary_table([BatchItem("a.mp4", "skipped", 1.0, ["a/out.mp4"]), BatchItem("b.mp4", "failed", 2.0,
                                                                                       error="boom")])
    assert table.splitlines()[-1] == "1 skipped, 1 failed of 2 videos" and "boom" in table
    assert json.loads(manifest.path.read_text().splitlines()[0])["outputs"] == ["a/out.mp4"]


def test_an_end_the_websocket_missed_is_read_from_the_history():
    client = ComfyClient("http://127.0.0.1:1")
    messages = [["execution_start", {}], ["execution_interrupted", {"node_id": "8", "node_type": "VIDiffSampler"}]]
    client.history = lambda i: {"status": {"status_str": "error", "messages": messages}}
    with pytest.raises(PromptFailed, match=r"interrupted at node 8 \(VIDiffSampler\)"):
        client._ended_unseen(PROMPT, "p")
    client.history = lambda i: {"status": {"status_str": "success", "messages": []}}
    assert client._ended_unseen(PROMPT, "p") is True
    client.history, client.in_queue = (lambda i: None), (lambda i: True)
    assert client._ended_unseen(PROMPT, "p") is False  # still waiting or running
    client.in_queue = lambda i: False
    with pytest.raises(PromptFailed, match="deleted from the server's queue") as e:
        client._ended_unseen(PROMPT, "p")
    assert e.value.status == "deleted"
