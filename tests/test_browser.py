"""The real ComfyUI frontend (comfyui-frontend-package 1.32.9) in headless Chromium, driven by Playwright:
every workflow loads, converts to an accepted API prompt, the extension's presets, timeline and progress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from comfy_harness import API_ALL, ROOT, UI, UI_ALL, UI_PLAIN

pytestmark = pytest.mark.comfyui
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def page(server):
    yield from browser_page(server)


def browser_page(server):
    """A page of the real frontend on `server`, VIDiff's nodes registered, first-run dialogs closed."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: install the Debian packages chromium and chromium-driver (.ci/run does)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        server.post("/settings/Comfy.TutorialCompleted", True)  # no first-run template browser
        page.goto(server.url)
        page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph", timeout=120_000)
        page.wait_for_function("() => !!LiteGraph.registered_node_types['VIDiffSampler']", timeout=60_000)
        _close_dialogs(page)
        page.vidiff_errors = errors
        yield page
        browser.close()


def _close_dialogs(page) -> None:
    """A new user gets the template browser on first start: close whatever dialog is open."""
    page.wait_for_timeout(1500)
    for _ in range(5):
        if not page.locator(".p-dialog-mask").count():
            return
        close = page.locator(".p-dialog-mask button[aria-label='Close'], .p-dialog-mask .p-dialog-close-button")
        if close.count():
            close.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)
    assert not page.locator(".p-dialog-mask").count(), "a dialog stays open"


def _load(page, workflow: dict) -> None:
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", workflow)
    page.wait_for_timeout(300)


def _stop_queue(server) -> None:
    server.post("/queue", {"clear": True})
    server.post("/interrupt", {})


@pytest.mark.parametrize("name", sorted(UI_PLAIN))
def test_workflow_loads_and_converts_to_an_accepted_prompt(server, page, name):
    check_workflow_converts_to_an_accepted_prompt(server, page, name)


def check_workflow_converts_to_an_accepted_prompt(server, page, name: str) -> None:
    """Every node known to the frontend, every widget value in place, the same graph as the API twin, and the
    server accepts the prompt the frontend makes of it."""
    _load(page, UI_ALL[name])
    report = page.evaluate("""() => app.graph._nodes.map(n => ({
        id: n.id, type: n.type, mode: n.mode, known: !!LiteGraph.registered_node_types[n.type],
        widgets: Object.fromEntries((n.widgets || []).map(w => [w.name, w.value]))}))""")
    assert all(n["known"] for n in report), [n["type"] for n in report if not n["known"]]
    api = API_ALL[name.removeprefix("vidiff_")]
    for node in report:  # every widget value of the API workflow landed in the widget of that name
        if node["type"] == "Note":  # the frontend's own text note: never sent to the server
            continue
        if str(node["id"]) not in api:  # an optional slot (the LoRA loader), shown bypassed, left out of the API form
            assert node["mode"] == 4, node
            continue
        for key, value in api[str(node["id"])]["inputs"].items():
            if not isinstance(value, list) and key in node["widgets"]:
                assert node["widgets"][key] == value, f"{name}: {node['type']}.{key}"
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert {k: v["class_type"] for k, v in prompt.items()} == {k: v["class_type"] for k, v in api.items()}
    links = lambda p: {k: {i: v for i, v in n["inputs"].items() if isinstance(v, list)} for k, n in p.items()}  # noqa: E731
    assert links(prompt) == links(api)  # the same graph; a bypassed node's input passed through
    code, body = server.post("/prompt", {"prompt": prompt})
    _stop_queue(server)
    assert code == 200, body
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_presets_fill_the_instruction_and_are_saved(page):
    _load(page, UI["vidiff_segmentation"])
    result = page.evaluate("""() => {
        const node = app.graph._nodes.find(n => n.type === 'VIDiffInstructionEncode');
        node.vidiffApplyPreset({task: 'segmentation', object: 'girl riding the horse', color: 'red'});
        const seg = node.widgets.find(w => w.name === 'instruction').value;
        node.vidiffApplyPreset({task: 'style_text', style: 'Watercolor'});
        const style = node.widgets.find(w => w.name === 'instruction').value;
        const saved = app.graph.serialize().nodes.find(n => n.id === node.id);
        return {seg, style, saved};
    }""")
    assert result["seg"] == "Change the girl riding the horse pixels to red, while keeping the other pixels constant"
    assert result["style"] == "Turn the video to Watercolor Style."
    saved = result["saved"]
    assert saved["properties"]["VIDiff preset"]["task"] == "style_text"
    assert saved["widgets_values"] == ["Turn the video to Watercolor Style."]  # presets are not widget values
    _load(page, {**UI["vidiff_segmentation"], "nodes": [
        {**n, **({"properties": saved["properties"]} if n["type"] == "VIDiffInstructionEncode" else {})}
        for n in UI["vidiff_segmentation"]["nodes"]]})
    task = page.evaluate("""() => app.graph._nodes.find(n => n.type === 'VIDiffInstructionEncode')
        .widgets.find(w => w.name === 'task').value""")
    assert task == "style_text"
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    encode = next(v for v in prompt.values() if v["class_type"] == "VIDiffInstructionEncode")
    assert set(encode["inputs"]) == {"model", "clip", "instruction"}  # nothing extra sent to the server


@pytest.mark.parametrize("frames, clip_length, overlap", [(17, 16, 4), (40, 16, 4), (100, 12, 3), (8, 16, 4)])
def test_timeline_shows_the_planners_clips(page, frames, clip_length, overlap):
    from vidiff_model.long_video import plan_clips

    _load(page, UI["vidiff_long_video"])
    shown = page.evaluate("""async ([frames, clipLength, overlap]) => {
        const node = app.graph._nodes.find(n => n.type === 'VIDiffLongVideo');
        node.widgets.find(w => w.name === 'clip_length').value = clipLength;
        node.widgets.find(w => w.name === 'overlap').value = overlap;
        node.vidiffSetFrames(frames);
        await new Promise(r => setTimeout(r, 50));
        await node.vidiffRefreshPlan();
        return node.vidiffPlan;
    }""", [frames, clip_length, overlap])
    want = [{"start": c.start, "end": c.end, "overlap": c.overlap, "new_start": c.new_start}
            for c in plan_clips(frames, clip_length, overlap)]
    assert shown == want
    page.screenshot(path=str(ARTIFACTS / f"timeline_{frames}_{clip_length}_{overlap}.png"))


def test_run_button_queues_the_workflow_and_the_video_appears(server, page):
    _load(page, UI["vidiff_style_text"])
    page.evaluate("""() => {
        const sampler = app.graph._nodes.find(n => n.type === 'VIDiffSampler');
        sampler.widgets.find(w => w.name === 'steps').value = 2;
        app.graph._nodes.find(n => n.type === 'SaveVideo').widgets.find(w => w.name === 'filename_prefix').value = 'VIDiff/from_ui';
    }""")
    page.get_by_role("button", name="Run", exact=True).first.click()
    try:
        # the host's executed-output hook gives the SaveVideo node its result; its preview element follows
        page.wait_for_function("""() => {
            const save = app.graph._nodes.find(n => n.type === 'SaveVideo');
            const shown = [...(save.images || []), ...(app.nodeOutputs?.[save.id]?.images || [])];
            return shown.some(i => (i.filename || '').startsWith('from_ui'));
        }""", timeout=180_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / "run_from_ui.png"))
    assert list((server.workdir / "output" / "VIDiff").glob("from_ui*.mp4"))
    status = page.evaluate("() => app.graph._nodes.find(n => n.type === 'VIDiffSampler').vidiffProgress")
    assert status and status["step"] == 2 and status["steps"] == 2
    assert not page.vidiff_errors, page.vidiff_errors
