"""web/vidiff.js in the real frontend (headless Chromium, see test_browser.py): VIDiff Video Metrics' figures laid
out inside the node below its controls, and VIDiff Load Sample Clip swapped for VIDiff Load Video in one step."""

from __future__ import annotations

import numpy as np
import pytest
from comfy_harness import MINI_API, UI
from test_browser import ARTIFACTS, _load, _stop_queue, page  # noqa: F401  (page: the browser fixture)

pytestmark = pytest.mark.comfyui

BUILD_METRICS_GRAPH = """() => {
    app.graph.clear();
    const add = (type, pos) => { const n = LiteGraph.createNode(type); n.pos = pos; app.graph.add(n); return n; };
    const clip = add('VIDiffLoadSampleClip', [40, 120]);
    clip.widgets.find(w => w.name === 'frames').value = 4;
    const degrade = add('VIDiffDegradeVideo', [40, 330]);
    clip.connect(0, degrade, 0);
    const metrics = add('VIDiffVideoMetrics', [420, 120]);
    degrade.connect(0, metrics, 0);
    clip.connect(0, metrics, 1);
    app.canvas.ds.scale = 1;
    app.canvas.ds.offset = [60, 40];
    app.graph.setDirtyCanvas(true, true);
    return metrics.id;
}"""


def test_metrics_figures_are_drawn_inside_the_node_below_its_controls(server, page):
    node_id = page.evaluate(BUILD_METRICS_GRAPH)
    before = page.evaluate("id => [...app.graph.getNodeById(id).size]", node_id)
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    page.wait_for_function("id => app.graph.getNodeById(id).vidiffMetrics.figures.length > 0", arg=node_id,
                           timeout=180_000)
    page.evaluate("() => app.canvas.draw(true, true)")
    page.wait_for_timeout(300)
    layout = page.evaluate("""id => {
        const node = app.graph.getNodeById(id);
        const own = node.widgets.find(w => w.name === 'vidiff_metrics');
        const controls = node.widgets.filter(w => w !== own);
        const rect = app.canvas.canvas.getBoundingClientRect();
        const toScreen = ([x, y]) => { const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([x, y]);
            return [rect.left + cx / (window.devicePixelRatio || 1), rect.top + cy / (window.devicePixelRatio || 1)]; };
        return {
            size: [...node.size], pos: [...node.pos], widgetTop: own.y,
            controlsBottom: Math.max(...controls.map(w => w.y + (w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT))),
            lines: node.vidiffMetricsDrawn, rows: node.vidiffMetrics,
            topLeft: toScreen(node.pos),
            bottomRight: toScreen([node.pos[0] + node.size[0], node.pos[1] + node.size[1]]),
            saved: app.graph.serialize().nodes.find(n => n.id === id).widgets_values,
        };
    }""", node_id)
    sent = page.evaluate("async id => Object.keys((await app.graphToPrompt()).output[id].inputs)", node_id)
    page.screenshot(path=str(ARTIFACTS / "metrics_node.png"))
    labels = [label for label, _ in layout["rows"]["figures"]]
    assert labels[:3] == ["frames", "PSNR", "SSIM"] and "warping error" in labels, layout["rows"]
    assert layout["rows"]["figures"][0] == ["frames", "4"]
    # LPIPS and FID without local weights, CLIP (the command line's): one summary, not four long lines
    assert layout["rows"]["notes"] == ["LPIPS, FID, CLIP text, CLIP frames: unavailable (no local weights)"]
    width, height = layout["size"]
    assert layout["widgetTop"] >= layout["controlsBottom"]  # below warping_error, lpips_*, fid_inception
    assert len(layout["lines"]) >= len(labels) + 1
    for line in layout["lines"]:
        assert line["top"] >= layout["widgetTop"] and line["bottom"] <= height, (line, height)
        assert line["left"] >= 0 and line["right"] <= width, (line, width)
        if "valueLeft" in line:
            assert line["labelRight"] < line["valueLeft"], line  # name and value do not run into each other
    assert height >= before[1]  # grown to its lines, never shrunk
    assert layout["saved"] == [True, "none", "none", "none"]  # the figures are not saved as a widget value
    assert sorted(sent) == ["fid_inception", "lpips_alexnet", "lpips_heads", "prediction", "reference", "warping_error"]

    # The screenshot shows them: light text pixels in the figures' rows inside the node, none right of it.
    from PIL import Image

    shot = np.asarray(Image.open(ARTIFACTS / "metrics_node.png").convert("L")).astype(int)
    (x0, y0), (x1, y1) = layout["topLeft"], layout["bottomRight"]
    text_top = round(y0 + layout["widgetTop"])
    inside = shot[text_top:round(y1), round(x0) + 2:round(x1) - 2]
    beside = shot[text_top:round(y1), round(x1) + 4:round(x1) + 200]
    assert (inside > 150).sum() > 40 * len(layout["lines"]), "the figures are not visible in the screenshot"
    assert (beside > 150).sum() == 0, "text runs past the node's right edge"


def test_sample_clip_swaps_for_your_video_in_one_step(server, page):
    inputs = server.workdir / "input"
    assert (inputs / "vidiff_example.mp4").is_file()  # the example video the harness writes
    _load(page, UI["vidiff_mini_dehaze"])
    page.evaluate("""() => {
        const node = app.graph._nodes.find(n => n.type === 'VIDiffLoadSampleClip');
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [200 - node.pos[0], 300 - node.pos[1]];
        app.graph.setDirtyCanvas(true, true);
    }""")
    page.wait_for_timeout(300)
    title = page.evaluate("""() => {
        const node = app.graph._nodes.find(n => n.type === 'VIDiffLoadSampleClip');
        const rect = app.canvas.canvas.getBoundingClientRect();
        const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + 60, node.pos[1] - 15]);
        return [rect.left + x, rect.top + y];
    }""")
    page.mouse.click(*title, button="right")  # the node's context menu, as a user opens it
    page.get_by_text("Swap for VIDiff Load Video (your own video)").click()
    page.wait_for_timeout(1500)
    page.evaluate("""() => {  // then the user picks the video (the list's first may be another test's file)
        const own = app.graph._nodes.find(n => n.type === 'VIDiffLoadVideo');
        const video = own.widgets.find(w => w.name === 'video');
        video.value = 'vidiff_example.mp4';
        video.callback?.(video.value);
    }""")
    page.wait_for_function("() => app.graph._nodes.find(n => n.type === 'VIDiffLoadVideo')?.size[1] > 300")
    page.wait_for_timeout(500)  # the video preview has loaded and sized the node
    page.screenshot(path=str(ARTIFACTS / "swap_for_own_video.png"))
    swapped = page.evaluate("""() => {
        const own = app.graph._nodes.find(n => n.type === 'VIDiffLoadVideo');
        const box = n => [n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.pos[0] + n.size[0], n.pos[1] + n.size[1]];
        const overlaps = [];
        for (const a of app.graph._nodes) for (const b of app.graph._nodes) {
            const [p, q] = [box(a), box(b)];
            const hit = p[0] < q[2] && q[0] < p[2] && p[1] < q[3] && q[1] < p[3];
            if (a.id < b.id && hit) overlaps.push([a.type, b.type]);
        }
        const [x0, y0, x1, y1] = box(own);
        const group = app.graph._groups.find(g => g.title.includes('Load'));
        const inGroup = x0 >= group.pos[0] && y0 >= group.pos[1] && x1 <= group.pos[0] + group.size[0]
            && y1 <= group.pos[1] + group.size[1];
        return {samples: app.graph._nodes.filter(n => n.type === 'VIDiffLoadSampleClip').length, overlaps, inGroup,
                widgets: own && Object.fromEntries(own.widgets.filter(w => w.name !== '$$canvas-image-preview')
                                                    .map(w => [w.name, w.value]))};
    }""")
    assert swapped["samples"] == 0 and swapped["widgets"], swapped
    assert swapped["overlaps"] == [] and swapped["inGroup"], swapped  # the taller node pushed its column down
    assert swapped["widgets"]["frames"] == 16 and swapped["widgets"]["degradation"] == "pass through"
    assert swapped["widgets"]["width"] == swapped["widgets"]["height"] == 128
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    api = MINI_API["mini_dehaze"]
    (sample,) = [k for k, n in api.items() if n["class_type"] == "VIDiffLoadSampleClip"]
    (own,) = [k for k, n in prompt.items() if n["class_type"] == "VIDiffLoadVideo"]
    assert prompt[own]["inputs"]["frames"] == 16 and prompt[own]["inputs"]["degradation"] == "pass through"

    def links(p: dict, loader: str) -> dict:  # node -> {input: source}, the loader called "loader"
        source = lambda v: ["loader", v[1]] if v[0] == loader else v  # noqa: E731
        return {k: {name: source(v) for name, v in n["inputs"].items() if isinstance(v, list)}
                for k, n in p.items() if k != loader}

    assert links(prompt, own) == links(api, sample)  # every link moved across, nothing else changed
    code, body = server.post("/prompt", {"prompt": prompt})
    _stop_queue(server)
    assert code == 200, body


def test_metrics_figures_fit_the_room_a_template_gives_them(page):
    """The mini templates leave room for the figures (scripts/workflow_ui.py): after a run no metrics node grows
    over its neighbour. The text is the node's own, from the library on real frames."""
    from vidiff_model.evaluate import format_table
    from vidiff_model.metrics import evaluate_video
    from vidiff_model.mini.samples import load_sample_clip

    clean, _ = load_sample_clip("vidiff_mini_sample.webp", 4)
    text = format_table(evaluate_video(clean.flip(2), clean))  # every figure with a reference, LPIPS/FID unavailable
    _load(page, UI["vidiff_mini_dehaze"])
    result = page.evaluate("""text => {
        const metrics = app.graph._nodes.filter(n => n.type === 'VIDiffVideoMetrics');
        const before = metrics.map(n => n.size[1]);
        for (const node of metrics) node.onExecuted({text: [text]});
        app.canvas.draw(true, true);
        const box = n => [n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.pos[0] + n.size[0], n.pos[1] + n.size[1]];
        const overlaps = [];
        for (const a of metrics) for (const b of app.graph._nodes) {
            const [p, q] = [box(a), box(b)];
            if (a !== b && p[0] < q[2] && q[0] < p[2] && p[1] < q[3] && q[1] < p[3]) overlaps.push([a.id, b.id]);
        }
        return {before, after: metrics.map(n => n.size[1]), lines: metrics.map(n => n.vidiffMetricsDrawn.length),
                overlaps};
    }""", text)
    page.screenshot(path=str(ARTIFACTS / "metrics_in_template.png"))
    assert result["overlaps"] == [], result
    assert all(n >= 7 for n in result["lines"]), result  # 6 figures and the summary
