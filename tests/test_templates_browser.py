"""The templates as a user meets them, in the real ComfyUI frontend (comfyui-frontend-package 1.32.9) in a
1600x1000 headless Chromium: opened from the template browser, each shows the whole graph (its saved view),
tidy (groups left to right, no overlaps) with the instruction preset matching the instruction; a screenshot
per template is kept in test-artifacts/templates/. And a result saved by a VIDiff workflow, dropped on
the canvas, restores the workflow that made it (the host's SaveVideo and SaveAnimatedWEBP embed it)."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from comfy_harness import API_ALL, PEER_TEMPLATES, ROOT, UI, UI_ALL
from test_browser import ARTIFACTS, _close_dialogs, page  # noqa: F401  (the browser fixture)

from vidiff_model.mini.styles import STYLES

pytestmark = pytest.mark.comfyui
SHOTS = ARTIFACTS / "templates"
RESTORATIONS = ("recolor", "dehaze", "deblur", "inpaint")
# the preset each template's instruction node shows (web/vidiff.js: task and the task's fields)
PRESETS = {
    **{task: {"task": task} for task in RESTORATIONS}, **{f"mini_{task}": {"task": task} for task in RESTORATIONS},
    **{f"mini_style_{s}": {"task": "style_text", "style": s.capitalize()} for s in STYLES},
    "mini_long_video": {"task": "recolor"}, "mini_long_video_batched": {"task": "dehaze"},
    "segmentation": {"task": "segmentation", "object": "girl riding the horse", "color": "red"},
    "style_text": {"task": "style_text", "style": "Sketch"},
    "style_image": {"task": "style_image"}, "style_ip_adapter": {"task": "style_image"},
    "long_video": {"task": "style_text", "style": "Watercolor"},
    "long_video_batched": {"task": "style_text", "style": "Watercolor"},
    "compare_guidance": {"task": "dehaze"},
}
UI_PLAIN_OFFERED = sorted(k for k in UI if k.removeprefix("vidiff_") not in PEER_TEMPLATES)  # peers: test_peers.py
NOTE = "Note"  # the frontend's own text note, above a template's graph (what it needs): in no group
# the host's save nodes: each embeds the prompt and the workflow (extra_pnginfo) in the file it writes
EMBEDDING_SAVES = {"SaveVideo", "SaveAnimatedWEBP"}

GEOMETRY = """() => {
    const panelEl = document.querySelector('.graph-canvas-panel');
    const box = (b) => [b.left, b.top, b.right, b.bottom];
    // what floats over the graph panel (the minimap, the zoom controls): outermost absolute elements in it
    const overlays = [...panelEl.querySelectorAll('*')].filter((e) => {
        const s = getComputedStyle(e), b = e.getBoundingClientRect();
        if (s.position !== 'absolute' || s.pointerEvents === 'none' || s.display === 'none'
            || s.visibility === 'hidden' || !b.width || !b.height) return false;
        for (let p = e.parentElement; p !== panelEl; p = p.parentElement)
            if (getComputedStyle(p).position === 'absolute') return false;
        return true;
    }).map((e) => ({name: e.className.toString().split(' ')[0], rect: box(e.getBoundingClientRect())}));
    const el = app.canvas.canvas, c = el.getBoundingClientRect(), ds = app.canvas.ds;
    // LiteGraph: screen = (graph + offset) * scale, from the canvas element's corner
    const sx = (x) => c.left + (x + ds.offset[0]) * ds.scale, sy = (y) => c.top + (y + ds.offset[1]) * ds.scale;
    const screen = (x, y, w, h) => [sx(x), sy(y), sx(x + w), sy(y + h)];
    const title = LiteGraph.NODE_TITLE_HEIGHT;
    return {
        window: [innerWidth, innerHeight], canvas: [c.left, c.top, c.width, c.height],
        panel: box(panelEl.getBoundingClientRect()), overlays, ds: {scale: ds.scale, offset: [...ds.offset]},
        nodes: app.graph._nodes.map((n) => ({id: n.id, type: n.type, title: n.title,
            rect: screen(n.pos[0], n.pos[1] - title, n.size[0], n.size[1] + title)})),
        groups: app.graph._groups.map((g) => ({title: g.title,
            rect: screen(g.pos[0], g.pos[1], g.size[0], g.size[1])})),
        links: [...app.graph.links.values()].map((l) => [l.origin_id, l.target_id]),
    };
}"""


def _inside(inner, outer, tolerance=0.5) -> bool:
    return (inner[0] >= outer[0] - tolerance and inner[1] >= outer[1] - tolerance
            and inner[2] <= outer[2] + tolerance and inner[3] <= outer[3] + tolerance)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _open_from_template_browser(page, name: str) -> None:
    """Templates (side bar) → Extensions: ComfyUI-VIDiff → the template's card, as a user does."""
    page.locator(".side-tool-bar-container").get_by_role("button", name="Templates").first.click()
    dialog = page.locator(".p-dialog-mask")
    dialog.get_by_text("ComfyUI-VIDiff", exact=True).first.click()
    dialog.get_by_text(name, exact=True).first.click()
    page.wait_for_function("(n) => !document.querySelector('.p-dialog-mask') && app.graph._nodes.length === n",
                           arg=len(UI[name]["nodes"]), timeout=30_000)


def _settle(page) -> None:
    """Wait until media previews have loaded and no node changes size any more."""
    last = None
    for _ in range(20):
        page.wait_for_timeout(400)
        sizes = page.evaluate("() => app.graph._nodes.map((n) => [...n.size].map(Math.round))")
        if sizes == last:
            return
        last = sizes


def _alerts(page) -> list[str]:
    """The frontend's toasts (warnings such as a workflow failing its schema check); closes them."""
    toasts = page.locator(".p-toast-message")
    texts = [toasts.nth(i).inner_text() for i in range(toasts.count())]
    page.evaluate("() => document.querySelectorAll('.p-toast-message .p-toast-close-button').forEach((b) => b.click())")
    return texts


@pytest.mark.parametrize("name", UI_PLAIN_OFFERED)
def test_template_opens_whole_and_tidy(server, page, name):  # noqa: F811
    check_template_opens_whole_and_tidy(page, name)


def check_template_opens_whole_and_tidy(page, name: str) -> None:  # noqa: F811
    """Opened from the template browser: the saved view, every node in the panel, none overlapping, groups in stage
    order holding every node (a Note excepted), links flowing rightwards, the preset matching the instruction."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    _open_from_template_browser(page, name)
    _settle(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    alerts = _alerts(page)
    assert not alerts, alerts
    geo = page.evaluate(GEOMETRY)
    saved = UI[name]["extra"]["ds"]
    assert geo["window"] == [1600, 1000] and geo["canvas"] == [0, 0, 1600, 1000]
    assert geo["ds"]["scale"] == pytest.approx(saved["scale"]) and geo["ds"]["offset"] == pytest.approx(saved["offset"])
    assert {o["name"] for o in geo["overlays"]} >= {"minimap-main-container"}, geo["overlays"]
    # every node inside the graph panel (below the tab and run bars, right of the side bar), none under
    # the minimap or the zoom controls, none over another
    for node in geo["nodes"]:
        assert _inside(node["rect"], geo["panel"]), f"{name}: {node['title']} {node['rect']} outside {geo['panel']}"
        for overlay in geo["overlays"]:
            assert not _overlap(node["rect"], overlay["rect"]), f"{name}: {node['title']} under {overlay['name']}"
    for i, a in enumerate(geo["nodes"]):
        for b in geo["nodes"][i + 1:]:
            assert not _overlap(a["rect"], b["rect"]), f"{name}: {a['title']} overlaps {b['title']}"
    # titled groups, left to right in the order of the stages, each node in one, links flowing rightwards
    groups = sorted(geo["groups"], key=lambda g: g["rect"][0])
    titles = [g["title"].split(" · ")[1] for g in groups]
    assert titles == [t for t in ("Load", "Encode", "Translate", "Decode", "Save") if t in titles], titles
    assert {"Load", "Translate", "Save"} <= set(titles)
    for a, b in zip(groups, groups[1:]):
        assert a["rect"][2] < b["rect"][0], f"{name}: groups {a['title']} and {b['title']} overlap"
    for group in groups:
        assert _inside(group["rect"], geo["panel"]), f"{name}: group {group['title']} outside the view"
    group_of = {}
    for node in geo["nodes"]:
        if node["type"] == NOTE:  # above the groups, in none
            assert not any(_overlap(node["rect"], g["rect"]) for g in groups), f"{name}: the note over a group"
            continue
        owners = [i for i, g in enumerate(groups) if _inside(node["rect"], g["rect"])]
        assert len(owners) == 1, f"{name}: {node['title']} in groups {owners}"
        group_of[node["id"]] = owners[0]
    for origin, target in geo["links"]:
        assert group_of[origin] <= group_of[target], f"{name}: link {origin} -> {target} flows leftwards"
    # the instruction preset agrees with the instruction
    preset = page.evaluate("""() => app.graph._nodes.filter((n) => n.type === 'VIDiffInstructionEncode').map((n) => ({
        shown: Object.fromEntries(n.widgets.filter((w) => !w.hidden).map((w) => [w.name, w.value])),
        saved: n.properties['VIDiff preset']}))""")
    want = PRESETS[name.removeprefix("vidiff_")]
    for node in preset:
        instruction = node["shown"].pop("instruction")
        assert node["shown"] == want and node["saved"] == want, f"{name}: {node} for {instruction!r}"
        for field in ("object", "color", "style"):
            assert want.get(field, "").lower() in instruction.lower(), f"{name}: {field} not in {instruction!r}"
    assert not page.vidiff_errors, page.vidiff_errors


def test_template_cards_show_their_pictures(server, page):  # noqa: F811
    """Each card of the pack in the template browser shows its workflows/<name>.jpg (not the frontend's default
    picture) whole, not cropped by the card's square box; its description says what the template does, with what it
    needs as the tooltip (web/vidiff_templates.js); and the experimental templates are not offered."""
    from PIL import Image

    from vidiff_model.remote.templates import template

    page.locator(".side-tool-bar-container").get_by_role("button", name="Templates").first.click()
    dialog = page.locator(".p-dialog-mask")
    dialog.get_by_text("ComfyUI-VIDiff", exact=True).first.click()
    cards = dialog.locator("[data-testid^='template-workflow-vidiff_']")
    cards.first.wait_for(timeout=30_000)
    shown = sorted(cards.nth(i).get_attribute("data-testid").removeprefix("template-workflow-")
                   for i in range(cards.count()))
    assert shown == sorted(UI), shown  # the offered ones; workflows/experimental/ is not listed
    for name in shown:
        card = dialog.locator(f"[data-testid='template-workflow-{name}']")
        card.scroll_into_view_if_needed()
        image = card.locator(f"img[alt='{name}']").first
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0 && el.src.startsWith('blob:')",
                               arg=image.element_handle(), timeout=20_000)
        size = image.evaluate("(el) => [el.naturalWidth, el.naturalHeight]")
        with Image.open(ROOT / "workflows" / f"{name}.jpg") as jpg:
            assert size == list(jpg.size), (name, size)
        assert image.is_visible()
        shown_box, box = image.bounding_box(), card.locator(".aspect-square").first.bounding_box()
        for edge in ("x", "y"):  # the whole picture, title band included, inside the box that clips it
            assert shown_box[edge] >= box[edge] - 0.5, (name, shown_box, box)
        assert shown_box["y"] + shown_box["height"] <= box["y"] + box["height"] + 0.5, (name, shown_box, box)
        description = card.locator("p").first
        info = template(name)
        page.wait_for_function("([el, text]) => el.textContent === text", arg=[description.element_handle(), info.does],
                               timeout=10_000)
        assert description.get_attribute("title") == info.description
        lines = description.evaluate(
            "(el) => Math.round(el.scrollHeight / parseFloat(getComputedStyle(el).lineHeight))")
        assert lines <= 2, (name, lines)  # the card shows two lines of it
    SHOTS.mkdir(parents=True, exist_ok=True)
    cards.first.scroll_into_view_if_needed()  # the first rows, their pictures loaded again
    page.wait_for_function("""() => [...document.querySelectorAll("[data-testid^='template-workflow-vidiff_']")]
        .slice(0, 4).every((c) => { const i = c.querySelector('img'); return i && i.complete && i.naturalWidth; })""",
                           timeout=20_000)
    page.screenshot(path=str(SHOTS / "template_cards.png"))
    dialog.locator("button:has(i.pi-times)").first.click()  # the browser's close button
    _close_dialogs(page)


def test_missing_models_dialog_names_every_file_with_its_folder_and_link(page, tmp_path):  # noqa: F811
    """Opened on a ComfyUI without the full-size files, a template's Missing Models dialog lists every file its
    loaders name (their `properties.models`), as folder / file, with a link: the download, or for the built VIDiff
    file the page on building it."""
    from comfy_harness import ComfyServer

    bare = ComfyServer(tmp_path / "bare").start()
    try:
        check_missing_models_dialog(page, bare, ("vidiff_dehaze", "vidiff_style_image"))
    finally:
        bare.stop()


def check_missing_models_dialog(page, bare, names) -> None:  # noqa: F811
    """On `bare` (a server without the files), each template's Missing Models dialog names every file its loaders
    list as folder / file; for an offered template, each with a Download the dialog allows."""
    bare.post("/settings/Comfy.TutorialCompleted", True)
    other = page.context.browser.new_page(viewport={"width": 1600, "height": 1000})
    other.goto(bare.url)
    other.wait_for_function("() => window.app && !!LiteGraph.registered_node_types['VIDiffSampler']",
                            timeout=120_000)
    for name in names:
        other.evaluate("async (wf) => { await app.loadGraphData(wf); }", UI_ALL[name])
        dialog = other.locator(".p-dialog:has(.comfy-missing-models)")
        dialog.wait_for(timeout=20_000)
        text = dialog.inner_text()
        expected = [m for n in UI_ALL[name]["nodes"] for m in n["properties"].get("models", [])]
        assert len(expected) >= 2, name
        for model in expected:
            assert f"{model['directory']} / {model['name']}" in text, (name, model, text)
        if name in UI:  # an offered template: the dialog can download every file (no red refusal)
            for refusal in ("Only allowed suffixes", "Download not allowed"):
                assert refusal not in text, (name, text)
            assert text.count("Download") >= len(expected), text
        other.screenshot(path=str(ARTIFACTS / f"missing_models_{name}.png"))
        other.keyboard.press("Escape")
        dialog.wait_for(state="detached", timeout=10_000)
    other.close()


def test_every_workflow_saves_through_nodes_that_embed_the_graph(server):
    info = server.get("/object_info")
    for name, prompt in API_ALL.items():
        if name in PEER_TEMPLATES:  # a peer pack's nodes are in its server's object_info: test_peers.py
            continue
        outputs = {n["class_type"] for n in prompt.values() if info[n["class_type"]].get("output_node")}
        assert outputs <= EMBEDDING_SAVES | {"VIDiffVideoMetrics"}, f"{name}: {outputs}"
        assert outputs & EMBEDDING_SAVES, name
    pack_outputs = {k for k, v in info.items() if "VIDiff" in v.get("python_module", "") and v.get("output_node")}
    assert pack_outputs == {"VIDiffVideoMetrics"}  # shows figures on the node; writes no file


def _embedded_workflow(path) -> dict:
    """The workflow the host wrote into a saved file: mp4 metadata tags, or the WebP's EXIF."""
    if path.suffix == ".mp4":
        import av

        with av.open(str(path)) as container:
            return json.loads(container.metadata["workflow"])
    from PIL import Image

    with Image.open(path) as im:
        value = next(v for v in im.getexif().values() if isinstance(v, str) and v.startswith("workflow:"))
        return json.loads(value.removeprefix("workflow:"))


def _graph(workflow: dict) -> tuple[dict, set]:
    """Nodes (type, title, widget values) and links (from node and output to node and input name)."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {(origin, slot, target, nodes[target]["inputs"][target_slot]["name"])
             for _, origin, slot, target, target_slot, _ in (link[:6] for link in workflow["links"])}
    return {k: (n["type"], n.get("title"), n.get("widgets_values")) for k, n in nodes.items()}, links


DROP = """async ([url, filename, type]) => {
    const blob = await (await fetch(url)).blob();
    const transfer = new DataTransfer();
    transfer.items.add(new File([blob], filename, {type}));
    const canvas = app.canvas.canvas, r = canvas.getBoundingClientRect();
    canvas.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: transfer,
                                                 clientX: r.left + 800, clientY: r.top + 990}));
}"""


@pytest.mark.parametrize("name", ["vidiff_mini_dehaze", "vidiff_segmentation"])  # SaveAnimatedWEBP; SaveVideo
def test_a_saved_result_dropped_on_the_canvas_restores_its_workflow(server, page, name):  # noqa: F811
    page.evaluate("async (wf) => { await app.loadGraphData(wf, true, true, 'drop test'); }", UI[name])
    tag = uuid.uuid4().hex[:8]
    page.evaluate("""(tag) => {  // a quick run: one step, 8 frames, files of its own
        for (const n of app.graph._nodes) {
            const w = (name) => n.widgets?.find((x) => x.name === name);
            if (n.type === 'VIDiffSampler') w('steps').value = 1;
            if (n.type === 'VIDiffLoadSampleClip') w('frames').value = 8;
            if (w('filename_prefix')) w('filename_prefix').value = `VIDiff/drop_${tag}_${n.id}`;
        }
    }""", tag)
    # queued as the frontend's Run queues it: the prompt, and the graph as extra_pnginfo.workflow
    sent = page.evaluate("""async () => {
        const p = await app.graphToPrompt();
        const body = JSON.stringify({prompt: p.output, client_id: 'drop-test',
                                     extra_data: {extra_pnginfo: {workflow: p.workflow}}});
        const r = await fetch('/prompt', {method: 'POST', headers: {'Content-Type': 'application/json'}, body});
        return {status: r.status, body: await r.json(), workflow: JSON.parse(JSON.stringify(p.workflow))};
    }""")
    assert sent["status"] == 200, sent["body"]
    history = server._history(sent["body"]["prompt_id"], timeout=900)
    assert history["status"]["status_str"] == "success", history["status"]
    saved = [item for out in history["outputs"].values() for item in out.get("images", [])]
    saves = sum(n["class_type"] in EMBEDDING_SAVES for n in API_ALL[name.removeprefix("vidiff_")].values())
    assert len(saved) == saves, saved
    for item in saved:
        path = server.workdir / "output" / item["subfolder"] / item["filename"]
        assert _graph(_embedded_workflow(path)) == _graph(sent["workflow"]), path.name
        page.evaluate("() => app.graph.clear()")
        query = urllib.parse.urlencode({"filename": item["filename"], "subfolder": item["subfolder"], "type": "output"})
        kind = "video/mp4" if path.suffix == ".mp4" else "image/webp"
        page.evaluate(DROP, [f"/view?{query}", item["filename"], kind])
        page.wait_for_function("(n) => app.graph._nodes.length === n", arg=len(sent["workflow"]["nodes"]),
                               timeout=30_000)
        restored = page.evaluate("() => app.graph.serialize()")
        assert _graph(restored) == _graph(sent["workflow"]), item["filename"]
        alerts = _alerts(page)
        assert not alerts, alerts  # e.g. the frontend's schema check of the embedded workflow
        page.screenshot(path=str(ARTIFACTS / f"dropped_{name}_{path.suffix[1:]}.png"))
    assert not page.vidiff_errors, page.vidiff_errors
