"""The UI (litegraph) form of an API prompt, laid out to open well in the ComfyUI frontend.

Used by scripts/make_workflows.py. A template opens in the frontend (comfyui-frontend-package 1.32.9) at
its saved view (`extra.ds`), so the layout decides what a user sees first:
- nodes flow left to right in titled groups, one per stage (load → encode → translate → decode → save);
  inside a group nodes stack in columns, ordered so that links into the next group do not cross;
- sizes leave room for what the frontend adds (previews, the instruction presets, the long-video timeline),
  so it never has to grow a node over its neighbour;
- the saved view fits every group into the part of a 1600×1000 window that the frontend leaves to the
  graph (below the tab bar and the run bar, right of the side bar, clear of the minimap), at the largest
  zoom the column packing allows;
- the instruction node carries the preset (web/vidiff.js) that describes its instruction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidiff_model.remote.model_files import template_models

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
BYPASS = 4  # litegraph node mode: bypassed (inputs pass through to outputs of the same type)

# -- stages ---------------------------------------------------------------------------------------------------
STAGES: tuple[tuple[str, str, frozenset[str]], ...] = (  # title, group colour (litegraph's palette), node types
    ("Load", "#3f789e", frozenset({
        "LoadVideo", "GetVideoComponents", "LoadImageMask", "VIDiffCutHoles", "VIDiffLoadSampleClip",
        "VIDiffDegradeVideo", "LoadImage", "VAELoader", "CLIPLoader", "VIDiffModelLoader", "VIDiffModelFromParts",
        "CLIPVisionLoader", "CheckpointLoaderSimple", "LoraLoaderModelOnly", "VIDiffApplyMotionModule",
        "IPAdapterModelLoader", "IPAdapterAdvanced", "VHS_BatchManager", "VHS_LoadVideo"})),
    ("Encode", "#8A8", frozenset({"VAEEncode", "CLIPVisionEncode", "VIDiffInstructionEncode"})),
    ("Translate", "#b58b2a", frozenset({"VIDiffLongVideo", "VIDiffSampler"})),
    ("Decode", "#88A", frozenset({"VAEDecode", "VIDiffMaskFromSegmentation", "MaskToImage", "VIDiffDetailTransfer",
                                  "VIDiffKeepLuminance", "ImageCompositeMasked"})),
    ("Save", "#a1309b", frozenset({"CreateVideo", "SaveVideo", "SaveAnimatedWEBP", "VIDiffVideoMetrics",
                                   "VHS_VideoInfoLoaded", "VHS_VideoCombine"})),
)


def stage_of(class_type: str) -> int:
    for index, (_, _, types) in enumerate(STAGES):
        if class_type in types:
            return index
    raise ValueError(f"{class_type}: no workflow stage; add it to STAGES in scripts/workflow_ui.py")


# -- the frontend's geometry (measured in comfyui-frontend-package 1.32.9, 1600x1000, first start) ---------------
TITLE = 30  # LiteGraph.NODE_TITLE_HEIGHT: a node's title bar lies above its pos
GROUP_TITLE = 34  # LGraphGroup.titleHeight (33.6)
PAD, GAP_Y, GAP_X, GROUP_GAP = 16, 28, 32, 48
# the graph panel (x0, y0, x1, y1): below the run bar and the "Introducing Nodes 2.0" banner the frontend shows at
# first start (38 px: the panel's top is at 168 while it shows), right of the side bar
VIEW = (63, 168, 1596, 996)
OVERLAYS = ((1342, 742, 1600, 1000),)  # the minimap and the zoom controls over the panel's bottom-right corner
MARGIN = 16

# Node heights follow LiteGraph's computeSize (6 + 20 per socket row + 24 per widget + 8), plus room for what
# a node shows besides sockets and widgets: media previews, the instruction text, latent previews, metrics.
EXTRA_HEIGHT = {"LoadVideo": 250, "LoadImage": 250, "LoadImageMask": 250, "VIDiffInstructionEncode": 110,
                "VIDiffSampler": 160, "VIDiffLongVideo": 90, "SaveVideo": 200, "SaveAnimatedWEBP": 200,
                "VIDiffVideoMetrics": 130, "VHS_LoadVideo": 310, "VHS_VideoCombine": 250}
NODE_WIDTH = 300


def node_height(class_type: str, sockets: int, outputs: int, widgets: int) -> int:
    return 6 + 20 * max(sockets, outputs) + (24 * widgets + 8 if widgets else 0) + EXTRA_HEIGHT.get(class_type, 0)


# -- instruction presets (web/vidiff.js: task, object, color, style) ----------------------------------------------
STYLE_IMAGE_INSTRUCTION = "Apply the style from this image to the video."
PRESET_FIELDS = {"segmentation": ("object", "color"), "style_text": ("style",)}  # the fields a task shows


def instruction_preset(instruction: str) -> dict:
    """The preset of web/vidiff.js that describes `instruction`: its task and the task's fields, read from
    the phrasings the models are trained on (training.templates.TEMPLATES, mini.styles.STYLES)."""
    from vidiff_model.mini.styles import STYLES
    from vidiff_model.training.templates import TEMPLATES

    for task, phrasings in TEMPLATES.items():
        for phrasing in phrasings:
            pattern = re.escape(phrasing).replace(re.escape("{object}"), "(?P<object>.+?)").replace(
                re.escape("{color}"), "(?P<color>[A-Za-z]+)")
            match = re.fullmatch(pattern, instruction, flags=re.IGNORECASE)
            if match:
                return {"task": task, **{k: v.lower() if k == "color" else v for k, v in match.groupdict().items()}}
    for name, style in STYLES.items():
        if instruction in style.templates:
            return {"task": "style_text", "style": name.capitalize()}
    if instruction == STYLE_IMAGE_INSTRUCTION:
        return {"task": "style_image"}
    raise ValueError(f"no instruction preset describes {instruction!r}: use a trained phrasing")


# -- layout -----------------------------------------------------------------------------------------------------
@dataclass
class Layout:
    pos: dict[str, list[int]]
    size: dict[str, list[int]]
    groups: list[dict]
    scale: float
    offset: list[float]


def _columns(order: list[str], inputs: dict[str, set[str]], heights: dict[str, int],
             max_height: int) -> list[list[str]]:
    """Stack nodes (in order) into columns no taller than max_height. A node fed by the one above it stays
    in that node's column (a chain such as CreateVideo → SaveVideo is not cut), unless the chain alone is
    taller; a node taller than max_height gets a column of its own."""
    chains: list[list[str]] = []
    for node_id in order:
        if chains and inputs[node_id] & set(chains[-1]):
            chains[-1].append(node_id)
        else:
            chains.append([node_id])
    columns: list[list[str]] = [[]]
    used = 0

    def tall(ids: list[str]) -> int:
        return sum(TITLE + heights[k] for k in ids) + GAP_Y * (len(ids) - 1)

    for chain in chains:
        pieces = [chain] if tall(chain) <= max_height else [[k] for k in chain]
        for piece in pieces:
            if columns[-1] and used + GAP_Y + tall(piece) > max_height:
                columns.append([])
                used = 0
            used += (GAP_Y if columns[-1] else 0) + tall(piece)
            columns[-1].extend(piece)
    return columns


def _socket_y(node_y: float, slot: int) -> float:
    return node_y + 6 + 20 * slot + 10


def _layout(prompt: dict, heights: dict[str, int], slots: dict[tuple[str, str], int], max_height: int):
    """Positions for one column height. Stages are placed right to left: a node's place in its group follows
    the input socket of its consumer in the nearest later group, so links between groups do not cross."""
    stage = {k: stage_of(n["class_type"]) for k, n in prompt.items()}
    consumers: dict[str, list[tuple[str, int]]] = {k: [] for k in prompt}
    inputs: dict[str, set[str]] = {k: set() for k in prompt}
    for node_id, node in prompt.items():
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                consumers[value[0]].append((node_id, slots[(node_id, name)]))
                inputs[node_id].add(value[0])
    y: dict[str, float] = {}
    stage_columns: dict[int, list[list[str]]] = {}
    for s in sorted(set(stage.values()), reverse=True):
        members = [k for k in sorted(prompt, key=int) if stage[k] == s]
        key: dict[str, float] = {}
        for node_id in reversed(members):  # ids are topological: consumers come later
            later = [(stage[c], c, slot) for c, slot in consumers[node_id]]
            if not later:  # an output: in id order (above the others, outside the last group)
                key[node_id] = float(int(node_id))
                continue
            nearest = min(st for st, _, _ in later)
            if nearest == s:  # fed to a node of its own group: stand just above it
                key[node_id] = min(key[c] for st, c, _ in later if st == s) - 0.5
            else:
                key[node_id] = 1e6 + min(_socket_y(y[c], slot) for st, c, slot in later if st == nearest)
        order = sorted(members, key=lambda k: (key[k], int(k)))
        stage_columns[s] = _columns(order, inputs, heights, max_height)
        for column in stage_columns[s]:
            top = GROUP_TITLE + PAD + TITLE
            for node_id in column:
                y[node_id] = top
                top += heights[node_id] + TITLE + GAP_Y
    pos, groups, x = {}, [], 0
    for s in sorted(stage_columns):
        left = x
        x += PAD
        for column in stage_columns[s]:
            for node_id in column:
                pos[node_id] = [x, int(y[node_id])]
            x += NODE_WIDTH + GAP_X
        x += PAD - GAP_X
        bottom = max(y[k] + heights[k] for column in stage_columns[s] for k in column) + PAD
        title, color, _ = STAGES[s]
        groups.append({"title": f"{s + 1} · {title}", "bounding": [left, 0, x - left, int(bottom)], "color": color})
        x += GROUP_GAP
    return pos, groups


def _clear_of_overlays(rects, scale: float, origin: tuple[float, float], screen: tuple[float, float]) -> bool:
    """Whether no rect, drawn at `scale` with graph point `origin` at screen point `screen`, meets an overlay."""
    for rx, ry, rw, rh in rects:
        sx0, sy0 = screen[0] + (rx - origin[0]) * scale, screen[1] + (ry - origin[1]) * scale
        sx1, sy1 = sx0 + rw * scale, sy0 + rh * scale
        for ox0, oy0, ox1, oy1 in OVERLAYS:
            if sx0 < ox1 and sx1 > ox0 and sy0 < oy1 and sy1 > oy0:
                return False
    return True


def fit_view(rects: list[list[float]]) -> tuple[float, list[float]]:
    """The largest zoom (at most 1) and an offset that show every rect inside VIEW, clear of OVERLAYS:
    centred when that is clear, else from the top left. LiteGraph: screen = (graph + offset) * scale."""
    box = (min(r[0] for r in rects), min(r[1] for r in rects),
           max(r[0] + r[2] for r in rects), max(r[1] + r[3] for r in rects))
    width, height = box[2] - box[0], box[3] - box[1]
    room_w, room_h = VIEW[2] - VIEW[0] - 2 * MARGIN, VIEW[3] - VIEW[1] - 2 * MARGIN
    left, top = VIEW[0] + MARGIN, VIEW[1] + MARGIN
    scale = min(room_w / width, room_h / height, 1.0)
    while True:
        for sx, sy in ((left + (room_w - width * scale) / 2, top + (room_h - height * scale) / 2),
                       (left + (room_w - width * scale) / 2, top), (left, top)):
            if _clear_of_overlays(rects, scale, box[:2], (sx, sy)):
                return scale, [sx / scale - box[0], sy / scale - box[1]]
        scale *= 0.98


def layout(prompt: dict, heights: dict[str, int], slots: dict[tuple[str, str], int]) -> Layout:
    """The column height whose layout fits the view at the largest zoom."""
    tallest = max(heights.values()) + TITLE
    total = sum(h + TITLE + GAP_Y for h in heights.values())
    best = None
    for max_height in range(tallest, total + 40, 40):
        pos, groups = _layout(prompt, heights, slots, max_height)
        scale, offset = fit_view([g["bounding"] for g in groups])
        if best is None or scale > best.scale * 1.01:
            best = Layout(pos, {k: [NODE_WIDTH, h] for k, h in heights.items()}, groups, scale, offset)
    return best


# -- the UI workflow ------------------------------------------------------------------------------------------------
def _spec(object_info: dict, class_type: str) -> list[tuple[str, str, dict]]:
    """(name, type, options) of a node's inputs, required then optional, in the server's order."""
    info = object_info[class_type]["input"]
    out = []
    for section in ("required", "optional"):
        for name, spec in info.get(section, {}).items():
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            out.append((name, kind, spec[1] if len(spec) > 1 else {}))
    return out


NOTE_TYPE, NOTE_SIZE = "Note", [NODE_WIDTH * 2, 150]  # the frontend's own text note (not sent to the server)
# VideoHelperSuite's nodes (VHS_*) save their widgets by name ({name: value}; its web/js/VHS.core.js useKVState) and
# read a list as an old layout of their own; Video Combine's format adds widgets (pix_fmt, crf, ...) that are
# inputs of the prompt but not of /object_info.
KEYED_WIDGETS_PREFIX = "VHS_"


def to_ui(prompt: dict, object_info: dict, bypassed: set[str] = frozenset(), note: str = "") -> dict:
    """The UI (litegraph) form of an API prompt: nodes with widget values, typed links, titled groups, presets
    and a saved view (see the module docstring). Nodes in `bypassed` are shown bypassed (an optional slot);
    `note`, when given, is a Note above the graph (what the template needs, what it is for)."""
    nodes, links, heights, slots = {}, [], {}, {}
    outputs: dict[str, list[dict]] = {}
    for node_id, node in prompt.items():
        info = object_info[node["class_type"]]
        outputs[node_id] = [{"name": n, "type": t, "links": [], "slot_index": i}
                            for i, (n, t) in enumerate(zip(info["output_name"], info["output"]))]
    for node_id, node in sorted(prompt.items(), key=lambda kv: int(kv[0])):
        class_type = node["class_type"]
        inputs, widgets = [], []
        properties = {"Node name for S&R": class_type}
        shown_widgets = 0
        for name, kind, options in _spec(object_info, class_type):
            value = node["inputs"].get(name)
            is_widget = kind in WIDGET_TYPES
            if isinstance(value, list):  # a link
                link_id = len(links) + 1
                src, slot = value
                link_type = object_info[prompt[src]["class_type"]]["output"][slot]
                links.append([link_id, int(src), slot, int(node_id), len(inputs), link_type])
                outputs[src][slot]["links"].append(link_id)
                entry = {"name": name, "type": kind, "link": link_id}
                # the socket's row: sockets first, then the widget rows (where a linked widget shows its socket)
                slots[(node_id, name)] = sum("widget" not in i for i in inputs) + (20 if is_widget else 0)
                if is_widget:
                    entry["widget"] = {"name": name}
                    widgets.append(options.get("default"))
                    shown_widgets += 1
                inputs.append(entry)
            elif is_widget:  # listed as the frontend lists it (every widget has an input), so link slots agree
                inputs.append({"name": name, "type": kind, "widget": {"name": name}, "link": None})
                widgets.append(value if value is not None else options.get("default"))
                shown_widgets += 1
                if options.get("control_after_generate", name in ("seed", "noise_seed")):  # as the frontend does
                    widgets.append("fixed")
                    shown_widgets += 1
            else:
                inputs.append({"name": name, "type": kind, "link": None})
        if class_type.startswith(KEYED_WIDGETS_PREFIX):
            names = [i["name"] for i in inputs if "widget" in i]
            extras = {k: v for k, v in node["inputs"].items()
                      if k not in names and not isinstance(v, list) and k not in {i["name"] for i in inputs}}
            widgets = {**dict(zip(names, widgets)), **extras}
            shown_widgets += len(extras)
        models = template_models(class_type, node["inputs"])
        if models:  # the frontend's Missing Models dialog lists these when the folder lacks the file
            properties["models"] = models
        if class_type == "VIDiffInstructionEncode":
            preset = instruction_preset(node["inputs"]["instruction"])
            properties["VIDiff preset"] = preset
            shown_widgets += 1 + len(PRESET_FIELDS.get(preset["task"], ()))  # task and the task's fields
        sockets = sum("widget" not in i for i in inputs)
        heights[node_id] = node_height(class_type, sockets, len(outputs[node_id]), shown_widgets)
        title = node["_meta"]["title"]
        if title == class_type:
            title = object_info[class_type].get("display_name") or class_type
        nodes[node_id] = {"id": int(node_id), "type": class_type, "pos": None, "size": None, "flags": {},
                          "order": 0, "mode": BYPASS if node_id in bypassed else 0, "inputs": inputs, "outputs": outputs[node_id],
                          "properties": properties, "widgets_values": widgets, "title": title}
    placed = layout(prompt, heights, slots)
    for order, node_id in enumerate(sorted(nodes, key=lambda k: (placed.pos[k][0], placed.pos[k][1]))):
        nodes[node_id].update(pos=placed.pos[node_id], size=placed.size[node_id], order=order)
    groups = [{"id": i + 1, **g, "font_size": 24, "flags": {}} for i, g in enumerate(placed.groups)]
    scale, offset = placed.scale, placed.offset
    if note:
        top = min(g["bounding"][1] for g in groups)
        note_id = str(max(int(k) for k in prompt) + 1)
        pos = [min(g["bounding"][0] for g in groups), top - NOTE_SIZE[1] - 2 * TITLE]
        nodes[note_id] = {"id": int(note_id), "type": NOTE_TYPE, "pos": pos, "size": NOTE_SIZE, "flags": {},
                          "order": len(nodes), "mode": 0, "inputs": [], "outputs": [],
                          "properties": {"text": ""}, "widgets_values": [note], "color": "#432", "bgcolor": "#653",
                          "title": "Note"}
        scale, offset = fit_view([g["bounding"] for g in groups]
                                 + [[pos[0], pos[1] - TITLE, NOTE_SIZE[0], NOTE_SIZE[1] + TITLE]])
    return {"last_node_id": max(int(k) for k in nodes), "last_link_id": len(links),
            "nodes": [nodes[k] for k in sorted(nodes, key=int)], "links": links, "groups": groups, "config": {},
            "extra": {"ds": {"scale": round(scale, 4), "offset": [round(v, 1) for v in offset]}},
            "version": 0.4}
