// VIDiff frontend extension. Optional: the pack works without it; it adds
//  1. instruction presets on VIDiffInstructionEncode (the paper's phrasing; the text stays editable),
//  2. a long-video timeline on VIDiffLongVideo (the clips come from the server's planner),
//  3. live "clip k/n, step s/S" on VIDiffSampler while it runs,
//  4. the figures of VIDiffVideoMetrics laid out inside the node, below its controls,
//  5. "Swap for VIDiff Load Video" in VIDiffLoadSampleClip's menu: your own video in one step.
// Existing node callbacks are chained, never replaced; no HTML is built from user text.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const PRESET_PROPERTY = "VIDiff preset";
const FRAMES_PROPERTY = "VIDiff timeline frames";

// task -> instruction template; {object}, {color}, {style} come from the preset widgets.
export const PRESETS = {
  custom: null,
  recolor: "Convert the grayscale clip into a colorful masterpiece",
  dehaze: "Remove the applied haze from this video",
  deblur: "Enhance the clarity of this blurry video",
  inpaint: "Repair the video with missing parts",
  segmentation: "Change the {object} pixels to {color}, while keeping the other pixels constant",
  style_text: "Turn the video to {style} Style.",
  style_image: "Apply the style from this image to the video.",
};
const COLORS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black"];
// the preset widgets a task uses besides `task`; the others are hidden
const PRESET_FIELDS = { segmentation: ["object", "color"], style_text: ["style"] };

export function presetText(preset) {
  const template = PRESETS[preset.task];
  if (!template) return null;
  return template
    .replace("{object}", preset.object || "object")
    .replace("{color}", preset.color || "red")
    .replace("{style}", preset.style || "Sketch");
}

function chain(object, name, fn) {
  const previous = object[name];
  object[name] = function (...args) {
    const result = previous?.apply(this, args);
    fn.apply(this, args);
    return result;
  };
}

// A widget that is saved in node.properties, not in widgets_values, and never sent to the server.
function localWidget(node, type, name, value, callback, options = {}) {
  const widget = node.addWidget(type, name, value, callback, { ...options, serialize: false });
  widget.serialize = false;
  return widget;
}

function setupPresets(node) {
  const instruction = node.widgets?.find((w) => w.name === "instruction");
  if (!instruction) return;
  const state = { task: "custom", object: "object", color: "red", style: "Sketch" };
  const showFields = () => {
    const used = PRESET_FIELDS[state.task] ?? [];
    for (const key of ["object", "color", "style"]) {
      // hidden skips drawing; LiteGraph 1.32 still lays hidden widgets out, so they also take no height
      const widget = widgets[key];
      if (!("vidiffComputeSize" in widget)) widget.vidiffComputeSize = widget.computeSize;
      widget.hidden = !used.includes(key);
      widget.computeSize = widget.hidden ? () => [0, -4] : widget.vidiffComputeSize;
    }
    const min = node.computeSize();
    if (node.size[1] < min[1]) node.setSize([node.size[0], min[1]]);  // grow only: the layout stays
  };
  const apply = () => {
    node.properties[PRESET_PROPERTY] = { ...state };
    const text = presetText(state);
    if (text !== null) {
      instruction.value = text;
      instruction.callback?.(text);
    }
    showFields();
    node.setDirtyCanvas(true, true);
  };
  const widgets = {
    task: localWidget(node, "combo", "task", state.task, (v) => { state.task = v; apply(); },
      { values: Object.keys(PRESETS) }),
    object: localWidget(node, "text", "object", state.object, (v) => { state.object = v; apply(); }),
    color: localWidget(node, "combo", "color", state.color, (v) => { state.color = v; apply(); },
      { values: COLORS }),
    style: localWidget(node, "text", "style", state.style, (v) => { state.style = v; apply(); }),
  };
  node.vidiffApplyPreset = (preset) => {
    Object.assign(state, preset);
    for (const [key, widget] of Object.entries(widgets)) widget.value = state[key];
    apply();
  };
  chain(node, "onConfigure", function () {
    const saved = this.properties?.[PRESET_PROPERTY];
    if (saved) {
      Object.assign(state, saved);
      for (const [key, widget] of Object.entries(widgets)) widget.value = state[key];
    }
    showFields();
  });
  showFields();
}

async function fetchPlan(frames, clipLength, overlap) {
  const query = new URLSearchParams({ frames, clip_length: clipLength, overlap });
  const response = await api.fetchApi(`/vidiff/plan?${query}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body.clips;
}

function setupTimeline(node) {
  const value = (name) => node.widgets?.find((w) => w.name === name)?.value;
  node.vidiffPlan = [];
  node.vidiffPlanError = null;
  const refresh = async () => {
    const frames = node.properties[FRAMES_PROPERTY] ?? 48;
    try {
      node.vidiffPlan = await fetchPlan(frames, value("clip_length"), value("overlap"));
      node.vidiffPlanError = null;
    } catch (error) {
      node.vidiffPlan = [];
      node.vidiffPlanError = String(error.message || error);
    }
    node.vidiffPlanFrames = frames;
    node.setDirtyCanvas(true, true);
  };
  node.vidiffRefreshPlan = refresh;
  const framesWidget = localWidget(node, "number", "timeline frames", node.properties[FRAMES_PROPERTY] ?? 48,
    (v) => { node.properties[FRAMES_PROPERTY] = Math.max(1, Math.round(v)); refresh(); },
    { min: 1, max: 100000, step: 10, precision: 0 });
  node.vidiffSetFrames = (frames) => { framesWidget.value = frames; framesWidget.callback(frames); };
  for (const name of ["clip_length", "overlap"]) {
    const widget = node.widgets?.find((w) => w.name === name);
    if (widget) chain(widget, "callback", () => refresh());
  }
  chain(node, "onConfigure", function () {
    framesWidget.value = this.properties?.[FRAMES_PROPERTY] ?? 48;
    refresh();
  });
  chain(node, "onDrawForeground", function (ctx) {
    if (this.flags?.collapsed) return;
    // below the last widget; grow the node when the timeline does not fit
    const last = this.widgets?.[this.widgets.length - 1];
    const top = (last?.last_y ?? last?.y ?? this.size[1] - 70) + 26;
    if (this.size[1] < top + 62) this.setSize([this.size[0], top + 62]);
    const x0 = 10, width = this.size[0] - 20;
    ctx.save();
    ctx.font = "11px sans-serif";
    if (this.vidiffPlanError) {
      ctx.fillStyle = "#e66";
      ctx.fillText(this.vidiffPlanError.slice(0, 80), x0, top + 12);
    } else if (this.vidiffPlan.length) {
      const frames = this.vidiffPlanFrames;
      const scale = width / frames;
      const rowHeight = 10;  // clips stagger over 4 rows so overlaps stay visible
      this.vidiffPlan.forEach((clip, i) => {
        const y = top + 14 + (i % 4) * rowHeight;
        ctx.fillStyle = "#4a7";
        ctx.fillRect(x0 + clip.start * scale, y, (clip.end - clip.start) * scale, rowHeight - 2);
        ctx.fillStyle = "#da4";  // frames shared with the previous clip
        ctx.fillRect(x0 + clip.start * scale, y, clip.overlap * scale, rowHeight - 2);
      });
      ctx.fillStyle = "#bbb";
      ctx.fillText(`${this.vidiffPlan.length} clips over ${frames} frames`, x0, top + 10);
    }
    ctx.restore();
  });
  refresh();
}

function setupProgress(node) {
  node.vidiffStatus = "";
  chain(node, "onDrawForeground", function (ctx) {
    if (!this.vidiffStatus || this.flags?.collapsed) return;
    ctx.save();
    ctx.font = "12px sans-serif";
    ctx.fillStyle = "#8cf";
    ctx.fillText(this.vidiffStatus, 10, this.size[1] - 8);
    ctx.restore();
  });
}

// VIDiff Video Metrics: the figures in a widget below the node's controls, one "name  value" line per metric
// and the metrics without local weights summarised in one wrapped line; the node grows to its lines.
const METRIC_LABELS = {
  frames: "frames", psnr: "PSNR", ssim: "SSIM", lpips: "LPIPS", fid: "FID", colorfulness: "Colorfulness",
  cdc: "CDC", warping_error: "warping error", clip_text_alignment: "CLIP text", clip_frame_consistency: "CLIP frames",
};
const METRIC_FONT = "12px sans-serif";
const METRIC_LINE = 16;
const METRIC_MARGIN = 15;  // LiteGraph's widget margin

// The node's text ("name value" per line) -> rows: [label, value] figures, then one summary per reason
// for the unavailable ones ("no local weights: LPIPS, FID, ...").
export function metricRows(text) {
  const figures = [];
  const unavailable = new Map();
  for (const line of text.split("\n")) {
    const match = line.trim().match(/^(\S+)\s+(.*)$/);
    if (!match) continue;
    const [, key, value] = match;
    const label = METRIC_LABELS[key] ?? key;
    if (value.startsWith("unavailable")) {
      const reason = /no local .*weights/.test(value) ? "no local weights" : value.replace(/^unavailable:\s*/, "");
      unavailable.set(reason, [...(unavailable.get(reason) ?? []), label]);
    } else {
      const number = Number(value);
      const numeric = Number.isFinite(number) && value !== "";
      const shown = !numeric ? value : Number.isInteger(number) ? `${number}` : number.toFixed(4);
      figures.push([label, shown]);
    }
  }
  const notes = [...unavailable].map(([reason, labels]) => `${labels.join(", ")}: unavailable (${reason})`);
  return { figures, notes };
}

let measureContext = null;
function measure(text) {
  measureContext ??= document.createElement("canvas").getContext("2d");
  measureContext.font = METRIC_FONT;
  return measureContext.measureText(text).width;
}

// Words of `text` in lines no wider than `width` (a word wider than that is cut with an ellipsis).
function wrap(text, width) {
  const lines = [];
  let line = "";
  for (const word of text.split(" ")) {
    const candidate = line ? `${line} ${word}` : word;
    if (measure(candidate) <= width || !line) line = candidate;
    else { lines.push(line); line = word; }
  }
  if (line) lines.push(line);
  return lines.map((l) => {
    if (measure(l) <= width) return l;
    while (l.length > 1 && measure(`${l}…`) > width) l = l.slice(0, -1);
    return `${l}…`;
  });
}

// The lines to draw for a node width: {label, value} figures, {note} wrapped summaries.
export function metricLines(rows, nodeWidth) {
  const width = nodeWidth - 2 * METRIC_MARGIN;
  return [
    ...rows.figures.map(([label, value]) => ({ label, value })),
    ...rows.notes.flatMap((note) => wrap(note, width).map((text) => ({ note: text }))),
  ];
}

function setupMetrics(node) {
  node.vidiffMetrics = { figures: [], notes: [] };
  const widget = node.addCustomWidget({
    name: "vidiff_metrics", type: "vidiff_metrics", value: "", options: { serialize: false }, serialize: false,
    computeSize(width) {
      const lines = metricLines(node.vidiffMetrics, width ?? node.size[0]);
      return [width ?? node.size[0], lines.length ? lines.length * METRIC_LINE + 6 : 0];
    },
    draw(ctx, drawn, width, y) {
      const lines = metricLines(node.vidiffMetrics, width);
      node.vidiffMetricsDrawn = [];  // where each line went, in node coordinates (the browser test reads it)
      if (!lines.length) return;
      ctx.save();
      ctx.font = METRIC_FONT;
      ctx.textBaseline = "alphabetic";
      lines.forEach((line, i) => {
        const base = y + 3 + (i + 1) * METRIC_LINE - 4;
        if (line.note !== undefined) {
          ctx.fillStyle = "#999";
          ctx.textAlign = "left";
          ctx.fillText(line.note, METRIC_MARGIN, base);
          node.vidiffMetricsDrawn.push({ text: line.note, left: METRIC_MARGIN,
            right: METRIC_MARGIN + ctx.measureText(line.note).width, top: base - 12, bottom: base + 3 });
          return;
        }
        ctx.fillStyle = "#bbb";
        ctx.textAlign = "left";
        ctx.fillText(line.label, METRIC_MARGIN, base);
        ctx.fillStyle = "#eee";
        ctx.textAlign = "right";
        ctx.fillText(line.value, width - METRIC_MARGIN, base);
        node.vidiffMetricsDrawn.push({ text: `${line.label} ${line.value}`, left: METRIC_MARGIN,
          right: width - METRIC_MARGIN, top: base - 12, bottom: base + 3,
          labelRight: METRIC_MARGIN + ctx.measureText(line.label).width,
          valueLeft: width - METRIC_MARGIN - ctx.measureText(line.value).width });
      });
      ctx.restore();
    },
  });
  widget.serialize = false;
  chain(node, "onExecuted", function (output) {
    this.vidiffMetrics = metricRows((output?.text ?? []).join("\n"));
    const min = this.computeSize();
    if (this.size[1] < min[1]) this.setSize([this.size[0], min[1]]);  // grow only: the layout stays
    this.setDirtyCanvas(true, true);
  });
}

// VIDiff Load Sample Clip -> VIDiff Load Video (vidiff-mini): the same outputs in the same slots, so every link
// moves across; the template's frame count comes along.
export function swapForOwnVideo(sample) {
  const graph = sample.graph;
  const own = LiteGraph.createNode("VIDiffLoadVideo");
  own.pos = [...sample.pos];
  graph.add(own);
  const frames = sample.widgets?.find((w) => w.name === "frames")?.value;
  const framesWidget = own.widgets?.find((w) => w.name === "frames");
  if (framesWidget && frames !== undefined) framesWidget.value = frames;
  (sample.outputs ?? []).forEach((output, slot) => {
    for (const id of [...(output.links ?? [])]) {
      const link = graph.links instanceof Map ? graph.links.get(id) : graph.links[id];
      if (link) own.connect(slot, graph.getNodeById(link.target_id), link.target_slot);
    }
  });
  own.setSize([Math.max(own.size[0], sample.size[0]), own.size[1]]);
  // The new node is taller (its video preview appears once a file loads, whenever the user picks one): whenever it
  // grows past its lowest point so far, what lay below the sample loader in its column moves down and the groups
  // around it grow, so no node ends up under it.
  const [x0, y0] = sample.pos;
  let bottom = y0 + sample.size[1];
  const column = graph._nodes.filter((n) => n !== own && n !== sample && n.pos[1] >= bottom
    && n.pos[0] < x0 + own.size[0] && n.pos[0] + n.size[0] > x0);
  const groups = (graph._groups ?? []).filter((g) => x0 >= g.pos[0] && x0 < g.pos[0] + g.size[0]
    && y0 >= g.pos[1] && y0 < g.pos[1] + g.size[1]);
  const makeRoom = () => {
    const grow = own.pos[1] + own.size[1] - bottom;
    if (grow <= 0) return;
    for (const node of column) node.pos[1] += grow;
    for (const group of groups) group.size = [group.size[0], group.size[1] + grow];
    bottom += grow;
    graph.setDirtyCanvas(true, true);
  };
  chain(own, "onResize", makeRoom);
  makeRoom();
  graph.remove(sample);
  graph.setDirtyCanvas(true, true);
  return own;
}

function setupSampleClip(node) {
  chain(node, "getExtraMenuOptions", function (canvas, options) {
    options.unshift({ content: "Swap for VIDiff Load Video (your own video)", callback: () => swapForOwnVideo(this) },
      null);
  });
}

function onProgress(event) {
  const { node: id, clip, clips, step, steps, frames } = event.detail;
  const node = app.graph?.getNodeById(Number(id));
  if (!node) return;
  node.vidiffStatus = `clip ${clip}/${clips} · step ${step}/${steps}`;
  node.vidiffProgress = { ...event.detail };
  // the sampler knows the video's length: show it on the connected long-video timeline
  const link = node.inputs?.find((i) => i.name === "long_video")?.link;
  const origin = link != null ? app.graph.links[link]?.origin_id : null;
  const longVideo = origin != null ? app.graph.getNodeById(origin) : null;
  if (longVideo?.vidiffSetFrames && longVideo.vidiffPlanFrames !== frames && frames) longVideo.vidiffSetFrames(frames);
  node.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "VIDiff.frontend",
  async setup() {
    api.addEventListener("vidiff.progress", onProgress);
    api.addEventListener("executing", ({ detail }) => {
      if (detail !== null) return;  // the prompt finished: clear the live status
      for (const node of app.graph?._nodes ?? []) {
        if (node.vidiffStatus) { node.vidiffStatus = ""; node.setDirtyCanvas(true, true); }
      }
    });
  },
  async nodeCreated(node) {
    const type = node.comfyClass;
    if (type === "VIDiffInstructionEncode") setupPresets(node);
    else if (type === "VIDiffLongVideo") setupTimeline(node);
    else if (type === "VIDiffSampler") setupProgress(node);
    else if (type === "VIDiffVideoMetrics") setupMetrics(node);
    else if (type === "VIDiffLoadSampleClip") setupSampleClip(node);
  },
});
