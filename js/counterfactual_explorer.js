// @ts-check
// crosslens.CounterfactualExplorer, browser half. Steps through counterfactual searches in a
// generator's latent space and, for contrast, in pixel space (Dombrowski et al. 2024,
// arXiv 2206.05075).
//
// Everything drawn comes from ONE binary payload (trait `_payload`) that the kernel re-sends
// a few times a second while its background searches run. Per method the trajectories are
// ragged: the records of input i are rows offsets[i] .. offsets[i + 1] of `<method>_frames`,
// `<method>_probs` and `<method>_record_steps`. Scrubbing redraws from the payload in the
// next animation frame; only the target select ("target"), the Stop button ("stop") and the
// Run again button ("rerun") of the shell talk to the kernel, as custom messages.
import { readBlock } from "./payload.js";
import { axisStyle, drawAxes, drawImageData, inputImage, meanImage, niceTicks, sizeVectorCanvas, strokePolyline } from "./draw.js";
import { controlRow, formatNumber, h, rangeControl, selectControl, setOptions, traitSync } from "./controls.js";
import { mountExplorer } from "./explorer.js";
import { pixelFigure, probabilityBars } from "./panels.js";

const CF_IMAGE_SIZE = 112;
const CURVE_WIDTH = 700;
const CURVE_HEIGHT = 170;
const CURVE_MARGIN = { left: 40, right: 24, top: 10, bottom: 26 };
const FRACTION_POSITIONS = 100; // the fraction slider moves in 1 % steps
const METHOD_INFO = {
  latent: { title: "Latent path", dash: [] },
  pixel: { title: "Pixel path", dash: [6, 4] },
};
const ALIGN_OPTIONS = [
  { value: "fraction", label: "share of each path" },
  { value: "step", label: "Adam step (shared)" },
];
const CF_HELP = "Latent path: Adam on the generator's code z, every frame is g(z), a realistic image that morphs "
  + "towards the target class. Pixel path: the same loop on the pixels themselves, the conventional approach: it "
  + "reaches the target through faint, adversarial noise. |x − x′| shows what changed (one color scale for both). "
  + "Position by share of each path compares the two paths shape for shape; by Adam step compares their speed "
  + "(a finished search holds its last frame).";

/**
 * Index of the last element of sorted `values[start, end)` that is <= v (start when none is).
 * @param {ArrayLike<number>} values
 * @param {number} start
 * @param {number} end
 * @param {number} v
 */
function lastAtOrBefore(values, start, end, v) {
  let lo = start;
  let hi = end - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (values[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** @typedef {import("./explorer.js").Shell} Shell */

/** @type {import("./explorer.js").ViewSpec} */
const COUNTERFACTUAL_VIEW = {
  className: "xl-counterfactual",
  title: "Counterfactual explorer",
  subtitle: () => "latent path vs pixel path · Dombrowski et al. 2024",
  busyText: "Searching…",
  jobs: true,
  help: () => CF_HELP,
  picker: (common) => common.n > 1,

  syncs(shell) {
    const { model, state } = shell;
    // `follow`: in step mode, stay on the newest step while frames stream in
    Object.assign(state, { align: "fraction", fraction: 1, step: 0, follow: true });
    return {
      align: traitSync(model, "align", (v) => { state.align = v; shell.redraw(); }),
      fraction: traitSync(model, "fraction", (v) => { state.fraction = v; shell.redraw(); }),
      step: traitSync(model, "step", (v) => { state.step = v; state.follow = false; shell.redraw(); }),
    };
  },

  load(shell, first) {
    const { state, model, common } = shell;
    const { meta, arrays } = common;
    /** @type {Record<string, any>} */
    const methods = {};
    for (const m of meta.methods) {
      methods[m] = {
        offsets: arrays[`${m}_offsets`].data, frames: arrays[`${m}_frames`], probs: arrays[`${m}_probs`],
        recordSteps: arrays[`${m}_record_steps`].data, steps: arrays[`${m}_steps`].data,
        success: arrays[`${m}_success`].data, status: arrays[`${m}_status`].data,
      };
    }
    state.methods = methods;
    if (first) {
      state.align = model.get("align") === "step" ? "step" : "fraction";
      state.fraction = Number(model.get("fraction") ?? 1);
      state.step = Math.max(0, model.get("step") | 0);
      state.follow = state.align === "fraction" || state.step === 0;
    } else if (state.align === "step" && state.follow && state.step >= state.extent) {
      state.step = extent(shell, shell.index);
      shell.syncs.step.push(state.step);
    }
    state.extent = extent(shell, shell.index);
  },

  build(shell) {
    const { ui, common, state, signal } = shell;
    ui.input = pixelFigure({ caption: "Input x", role: "input-canvas", shape: common.shape, size: CF_IMAGE_SIZE });
    ui.legendHigh = h("span");
    ui.input.node.appendChild(h("div", { className: "xl-colorbar", role: "difference-legend" }, [
      h("span", { className: "xl-colorbar-ramp", style: { background: shell.palette.sequentialGradient() } }),
      h("div", { className: "xl-colorbar-labels" }, [h("span", { text: "0" }), ui.legendHigh]),
      h("span", { className: "xl-colorbar-caption", text: "|x − x′|" }),
    ]));
    const methods = h("div", { className: "xl-cf-methods" });
    ui.panels = {};
    for (const m of common.meta.methods) methods.appendChild(buildMethod(shell, m));
    const main = h("div", {}, [
      h("div", { className: "xl-main" }, [h("div", { className: "xl-cf-input" }, [ui.input.node]), methods]),
      buildCurve(shell),
    ]);

    ui.alignSelect = selectControl({
      role: "align-select", label: "Position by", signal, onChange: (v) => setAlign(shell, v),
    });
    setOptions(ui.alignSelect, ALIGN_OPTIONS, state.align);
    ui.slider = rangeControl({
      role: "step-slider", label: "Position along the searches", count: FRACTION_POSITIONS + 1, signal,
      onInput: (position) => onSlider(shell, position),
    });
    ui.sliderValue = h("output", { className: "xl-value", role: "step-value" });
    const position = controlRow("Position", [ui.alignSelect, h("div", { className: "xl-slider" }, [ui.slider]),
      ui.sliderValue], "position");
    return { main, controls: [position] };
  },

  draw(shell, n) {
    const { common, ui, root, state } = shell;
    const source = common.source[n];
    const target = common.target[n];
    const [lo, hi] = common.range;
    const x = readBlock(common.arrays.x, [n]);
    drawImageData(ui.input.canvas, inputImage(x, common.shape, lo, hi));

    // one difference scale for both methods: the larger final change
    let limit = 1e-6;
    for (const m of common.meta.methods) {
      const tr = track(shell, m, n);
      if (!tr) continue;
      const last = readBlock(state.methods[m].frames, [tr.end - 1]);
      for (let i = 0; i < x.length; i++) limit = Math.max(limit, Math.abs(x[i] - last[i]));
    }
    ui.legendHigh.textContent = formatNumber(limit, 2);

    /** @type {Record<string, { step: number, p: number } | null>} */
    const shown = {};
    for (const m of common.meta.methods) shown[m] = drawMethod(shell, m, n, x, limit, source, target);
    drawCurve(shell, n, target);
    drawPosition(shell, n);

    const parts = [`Input ${n + 1} of ${common.n} · predicted ${common.names[source]} → target ${common.names[target]}`];
    for (const m of common.meta.methods) {
      const s = shown[m];
      if (s) parts.push(`${m}: step ${s.step}, p(${common.names[target]}) = ${formatNumber(s.p, 2)}`);
    }
    shell.setStatus(parts.join(" · "));
    root.dataset.align = state.align;
    for (const m of common.meta.methods) {
      const s = shown[m];
      root.dataset[`${m}Step`] = s ? String(s.step) : "";
      root.dataset[`${m}TargetProb`] = s ? String(s.p) : "";
    }
  },

  onIndex(shell, index) {
    if (shell.state.align === "step") shell.state.follow = shell.state.step >= extent(shell, index);
  },

  stopped(shell) {
    const stopped = shell.common.meta.status_names.indexOf("stopped");
    return shell.common.meta.methods.some((/** @type {string} */ m) => shell.state.methods[m].status.includes(stopped));
  },
};

/**
 * The records of input n for a method: [start, end) rows, or null when there are none.
 * @param {Shell} shell
 * @param {string} m
 * @param {number} n
 */
function track(shell, m, n) {
  const t = shell.state.methods[m];
  const start = t.offsets[n];
  const end = t.offsets[n + 1];
  return end > start ? { start, end, length: end - start } : null;
}

/**
 * The record shown for a method at the current position (a row of its arrays), or -1.
 * @param {Shell} shell
 * @param {string} m
 * @param {number} n
 */
function shownRecord(shell, m, n) {
  const { state } = shell;
  const tr = track(shell, m, n);
  if (!tr) return -1;
  if (state.align === "step") return lastAtOrBefore(state.methods[m].recordSteps, tr.start, tr.end, state.step);
  return tr.start + Math.round(state.fraction * (tr.length - 1));
}

/**
 * The Adam steps input n's searches have taken so far (the step slider's range).
 * @param {Shell} shell
 * @param {number} n
 */
function extent(shell, n) {
  let most = 0;
  for (const m of shell.common.meta.methods) most = Math.max(most, shell.state.methods[m].steps[n]);
  return most;
}

// ---- layout ---------------------------------------------------------------------------
/**
 * @param {Shell} shell
 * @param {string} m
 */
function buildMethod(shell, m) {
  const { common } = shell;
  const info = METHOD_INFO[/** @type {keyof typeof METHOD_INFO} */ (m)];
  const generator = `${common.meta.generator}${common.meta.exact ? ", exact inverse" : ", approximate inverse"}`;
  const sub = m === "latent" ? `generator: ${generator}` : "gradient ascent on the pixels";
  const state = h("span", { className: "xl-cf-state", role: `${m}-state` });
  const frame = pixelFigure({ caption: "Frame x′", role: `${m}-frame-canvas`, shape: common.shape, size: CF_IMAGE_SIZE });
  const diff = pixelFigure({ caption: "|x − x′|", role: `${m}-difference-canvas`, shape: common.shape, size: CF_IMAGE_SIZE });
  const bars = probabilityBars({
    names: common.names, title: "Class probabilities of x′", role: `${m}-probabilities`,
    context: ` in the ${m} frame`, compact: true,
  });
  const node = h("section", { className: `xl-cf-method xl-cf-${m}`, role: `${m}-panel`, attrs: { "aria-label": info.title } }, [
    h("div", { className: "xl-cf-method-title" }, [
      h("span", { className: "xl-cf-swatch" }), h("span", { className: "xl-cf-name", text: info.title }),
      h("span", { className: "xl-cf-sub", text: sub }), state,
    ]),
    h("div", { className: "xl-cf-row" }, [frame.node, diff.node, bars.node]),
  ]);
  shell.ui.panels[m] = { node, state, frame, diff, bars };
  return node;
}

/** @param {Shell} shell */
function buildCurve(shell) {
  const { ui, common } = shell;
  ui.curve = h("canvas", {
    className: "xl-curve", role: "confidence-canvas",
    attrs: { role: "img", "aria-label": "Target-class confidence along each search, with the position marked" },
  });
  ui.curveCtx = sizeVectorCanvas(ui.curve, CURVE_WIDTH, CURVE_HEIGHT);
  const legend = h("div", { className: "xl-map-legend", role: "curve-legend" });
  for (const m of common.meta.methods) {
    const info = METHOD_INFO[/** @type {keyof typeof METHOD_INFO} */ (m)];
    legend.appendChild(h("span", { className: "xl-legend-item" }, [
      h("span", { className: `xl-swatch-line xl-cf-line-${m}` }), h("span", { text: info.title })]));
  }
  legend.appendChild(h("span", { className: "xl-legend-item" }, [
    h("span", { className: "xl-swatch-line xl-cf-line-threshold" }), h("span", { text: `threshold ${common.meta.threshold}` })]));
  ui.curveTitle = h("div", { className: "xl-panel-title" });
  return h("figure", { className: "xl-figure xl-curve-figure" }, [ui.curveTitle, ui.curve, legend]);
}

// ---- interaction ----------------------------------------------------------------------
/**
 * @param {Shell} shell
 * @param {number} position
 */
function onSlider(shell, position) {
  const { state, syncs } = shell;
  if (state.align === "step") {
    state.step = position;
    state.follow = position >= extent(shell, shell.index);
    syncs.step.push(position);
  } else {
    state.fraction = position / FRACTION_POSITIONS;
    syncs.fraction.push(state.fraction);
  }
  shell.redraw();
}

/**
 * @param {Shell} shell
 * @param {string} value
 */
function setAlign(shell, value) {
  const { state, syncs } = shell;
  syncs.step.flush();
  syncs.fraction.flush();
  if (value === "step") {
    // keep the latent frame on show where it is
    const r = shownRecord(shell, "latent", shell.index);
    state.step = r >= 0 ? state.methods.latent.recordSteps[r] : 0;
    state.follow = state.step >= extent(shell, shell.index);
    state.align = "step";
    syncs.step.push(state.step);
    syncs.step.flush();
  } else {
    state.align = "fraction";
    syncs.fraction.push(state.fraction);
    syncs.fraction.flush();
  }
  syncs.align.push(state.align);
  syncs.align.flush();
  shell.redraw();
}

// ---- drawing --------------------------------------------------------------------------
/**
 * @param {Shell} shell
 * @param {string} m
 * @param {number} n
 * @param {Float32Array} x
 * @param {number} limit
 * @param {number} source
 * @param {number} target
 */
function drawMethod(shell, m, n, x, limit, source, target) {
  const { common, state, palette } = shell;
  const panel = shell.ui.panels[m];
  const t = state.methods[m];
  const status = common.meta.status_names[t.status[n]] || "queued";
  const steps = t.steps[n];
  const r = shownRecord(shell, m, n);
  panel.node.dataset.status = status;
  let text;
  if (status === "done") {
    text = t.success[n] ? `reached p > ${common.meta.threshold} in ${steps} steps` : `not reached in ${steps} steps`;
  } else if (status === "running") text = `running · step ${steps}`;
  else if (status === "stopped") text = r >= 0 && steps > 0 ? `stopped at step ${steps}` : "stopped";
  else text = "queued";
  panel.state.textContent = text;
  if (r < 0) {
    for (const f of [panel.frame, panel.diff]) {
      const ctx = /** @type {CanvasRenderingContext2D} */ (f.canvas.getContext("2d"));
      ctx.clearRect(0, 0, f.canvas.width, f.canvas.height);
      f.label.textContent = "waiting for the search";
    }
    panel.bars.update(null, source, target);
    return null;
  }
  const frame = readBlock(t.frames, [r]);
  const probs = readBlock(t.probs, [r]);
  const step = t.recordSteps[r];
  drawImageData(panel.frame.canvas, inputImage(frame, common.shape, common.range[0], common.range[1]));
  const change = x.map((v, i) => v - frame[i]);
  drawImageData(panel.diff.canvas, meanImage(change, common.shape, (v) => palette.sequential(v, limit), true));
  panel.frame.label.textContent = `x′ at step ${step}`;
  panel.diff.label.textContent = "|x − x′|";
  panel.bars.update(probs, source, target);
  return { step, p: probs[target] };
}

/**
 * @param {Shell} shell
 * @param {number} n
 * @param {number} target
 */
function drawCurve(shell, n, target) {
  const { ui, common, state, root, palette } = shell;
  const ctx = ui.curveCtx;
  const box = {
    left: CURVE_MARGIN.left, top: CURVE_MARGIN.top, width: CURVE_WIDTH - CURVE_MARGIN.left - CURVE_MARGIN.right,
    height: CURVE_HEIGHT - CURVE_MARGIN.top - CURVE_MARGIN.bottom,
  };
  const byStep = state.align === "step";
  const xMax = byStep ? Math.max(extent(shell, n), 1) : 1;
  const sx = (/** @type {number} */ v) => box.left + (v / xMax) * box.width;
  const sy = (/** @type {number} */ v) => box.top + (1 - v) * box.height;
  const style = axisStyle(root);
  const { text: muted, ink } = style;
  ctx.clearRect(0, 0, CURVE_WIDTH, CURVE_HEIGHT);
  const xTicks = byStep
    ? niceTicks(0, xMax, 6).filter((v) => Number.isInteger(v)).map((v) => /** @type {[number, string]} */ ([v, String(v)]))
    : [0, 0.25, 0.5, 0.75, 1].map((v) => /** @type {[number, string]} */ ([v, `${Math.round(100 * v)} %`]));
  const yTicks = [0, 0.5, 1].map((v) => /** @type {[number, string]} */ ([v, formatNumber(v, 1)]));
  drawAxes(ctx, box, xTicks, yTicks, sx, sy, style);

  // the threshold
  ctx.strokeStyle = muted;
  ctx.lineWidth = 1;
  ctx.setLineDash([2, 3]);
  strokePolyline(ctx, [[box.left, sy(common.meta.threshold)], [box.left + box.width, sy(common.meta.threshold)]]);
  ctx.setLineDash([]);

  // each method's confidence in the target, and the record on show
  for (const m of common.meta.methods) {
    const tr = track(shell, m, n);
    if (!tr) continue;
    const info = METHOD_INFO[/** @type {keyof typeof METHOD_INFO} */ (m)];
    const color = palette.spec.methods[m];
    const t = state.methods[m];
    const classes = t.probs.shape[1];
    const along = (/** @type {number} */ r) => byStep ? t.recordSteps[r] : (tr.length > 1 ? (r - tr.start) / (tr.length - 1) : 0);
    const conf = (/** @type {number} */ r) => t.probs.min + t.probs.data[r * classes + target] * t.probs.scale;
    // long tracks: at most ~2 points per CSS pixel
    const stride = Math.max(1, Math.floor(tr.length / (2 * box.width)));
    /** @type {Array<[number, number]>} */
    const points = [];
    for (let r = tr.start; r < tr.end; r += stride) points.push([sx(along(r)), sy(conf(r))]);
    points.push([sx(along(tr.end - 1)), sy(conf(tr.end - 1))]);
    if (byStep && t.recordSteps[tr.end - 1] < xMax) points.push([sx(xMax), sy(conf(tr.end - 1))]);
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.setLineDash(info.dash);
    strokePolyline(ctx, points);
    ctx.setLineDash([]);
    const r = shownRecord(shell, m, n);
    ctx.beginPath();
    ctx.arc(sx(along(r)), sy(conf(r)), 4.5, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
  }
  // the position
  const at = byStep ? Math.min(state.step, xMax) : state.fraction;
  ctx.strokeStyle = ink;
  ctx.lineWidth = 1.2;
  strokePolyline(ctx, [[sx(at), box.top], [sx(at), box.top + box.height]]);
  ui.curveTitle.textContent = `Confidence in the target class ${common.names[target]}, by ${byStep ? "Adam step" : "share of each path"}`;
}

/**
 * @param {Shell} shell
 * @param {number} n
 */
function drawPosition(shell, n) {
  const { ui, state } = shell;
  ui.alignSelect.value = state.align;
  let text;
  if (state.align === "step") {
    const most = extent(shell, n);
    ui.slider.max = String(Math.max(most, 1));
    ui.slider.value = String(Math.min(state.step, most));
    text = `step ${Math.min(state.step, most)} / ${most}`;
  } else {
    ui.slider.max = String(FRACTION_POSITIONS);
    ui.slider.value = String(Math.round(state.fraction * FRACTION_POSITIONS));
    text = `${Math.round(100 * state.fraction)} % of each path`;
  }
  ui.sliderValue.textContent = text;
  ui.slider.setAttribute("aria-valuetext", text);
}

export default { render: (/** @type {{ model: any, el: HTMLElement }} */ context) => mountExplorer(context, COUNTERFACTUAL_VIEW) };
