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
// Run again button ("rerun") talk to the kernel, as custom messages.
import { decodePayload, readBlock } from "./payload.js";
import { sequentialGradient } from "./colormaps.js";
import {
  drawAxes, drawImageData, inputImage, magnitudeImage, niceTicks, sizeVectorCanvas, strokePolyline, themeCss,
} from "./draw.js";
import {
  connectModel, controlRow, formatNumber, frameScheduler, guardKeys, h, rangeControl, selectControl, setOptions, traitSync,
} from "./controls.js";
import { imageShapeOf, inputPicker, pixelFigure, probabilityBars } from "./panels.js";

const CF_IMAGE_SIZE = 112;
const CF_THUMB_SIZE = 34;
const CURVE_WIDTH = 700;
const CURVE_HEIGHT = 170;
const CURVE_MARGIN = { left: 40, right: 24, top: 10, bottom: 26 };
const FRACTION_POSITIONS = 100; // the fraction slider moves in 1 % steps
const STATUS = ["queued", "running", "done", "stopped"];
const STOPPED = STATUS.indexOf("stopped");
const METHOD_INFO = {
  latent: { title: "Latent path", color: ["--xl-latent", "#00897b"], dash: [] },
  pixel: { title: "Pixel path", color: ["--xl-pixel", "#ab47bc"], dash: [6, 4] },
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

/**
 * @param {{ model: any, el: HTMLElement }} context
 */
function render({ model, el }) {
  const controller = new AbortController();
  const { signal } = controller;
  const root = h("div", { className: "crosslens xl-counterfactual" });
  el.appendChild(root);

  /** Front-end view state. `follow`: in step mode, stay on the newest step while frames stream in. */
  const view = {
    index: 0, align: "fraction", fraction: 1, step: 0, follow: true, pendingTarget: false, stopping: false,
    rerunning: false, drawn: false,
  };
  /** @type {any} */
  let data = null;
  /** @type {Record<string, any>} */
  const ui = {};
  const scheduler = frameScheduler(draw);

  const syncs = {
    index: traitSync(model, "index", (v) => { view.index = v; scheduler.request(); }),
    align: traitSync(model, "align", (v) => { view.align = v; scheduler.request(); }),
    fraction: traitSync(model, "fraction", (v) => { view.fraction = v; scheduler.request(); }),
    step: traitSync(model, "step", (v) => { view.step = v; view.follow = false; scheduler.request(); }),
  };

  // ---- payload -------------------------------------------------------------------------
  function load() {
    const { meta, arrays } = decodePayload(model.get("_payload"));
    const first = data === null;
    const previousExtent = data ? extent(view.index) : 0;
    /** @type {Record<string, any>} */
    const methods = {};
    for (const m of meta.methods) {
      methods[m] = {
        offsets: arrays[`${m}_offsets`].data, frames: arrays[`${m}_frames`], probs: arrays[`${m}_probs`],
        recordSteps: arrays[`${m}_record_steps`].data, steps: arrays[`${m}_steps`].data,
        success: arrays[`${m}_success`].data, status: arrays[`${m}_status`].data,
      };
    }
    data = {
      meta, arrays, methods, names: meta.class_names.map(String), n: arrays.x.shape[0],
      source: arrays.source.data, target: arrays.target.data, shape: imageShapeOf(meta),
    };
    if (first) {
      view.index = Math.min(Math.max(0, model.get("index") | 0), data.n - 1);
      view.align = model.get("align") === "step" ? "step" : "fraction";
      view.fraction = Number(model.get("fraction") ?? 1);
      view.step = Math.max(0, model.get("step") | 0);
      view.follow = view.align === "fraction" || view.step === 0;
      build();
    } else if (view.align === "step" && view.follow && view.step >= previousExtent) {
      view.step = extent(view.index);
      syncs.step.push(view.step);
    }
    // the kernel answers a target or rerun request with a new payload (or an error)
    view.pendingTarget = false;
    view.rerunning = false;
    updateRunning();
    scheduler.request();
  }

  /**
   * The records of input n for a method: [start, end) rows, or null when there are none.
   * @param {string} m
   * @param {number} n
   */
  function track(m, n) {
    const t = data.methods[m];
    const start = t.offsets[n];
    const end = t.offsets[n + 1];
    return end > start ? { start, end, length: end - start } : null;
  }

  /** The record shown for a method at the current position (a row of its arrays), or -1. */
  function shownRecord(/** @type {string} */ m, /** @type {number} */ n) {
    const tr = track(m, n);
    if (!tr) return -1;
    if (view.align === "step") return lastAtOrBefore(data.methods[m].recordSteps, tr.start, tr.end, view.step);
    return tr.start + Math.round(view.fraction * (tr.length - 1));
  }

  /** The Adam steps input n's searches have taken so far (the step slider's range). */
  function extent(/** @type {number} */ n) {
    let most = 0;
    for (const m of data.meta.methods) most = Math.max(most, data.methods[m].steps[n]);
    return most;
  }

  // ---- layout --------------------------------------------------------------------------
  function build() {
    const title = h("div", { className: "xl-title" }, [
      h("span", { className: "xl-title-main", text: "Counterfactual explorer" }),
      h("span", { className: "xl-title-sub", text: "latent path vs pixel path · Dombrowski et al. 2024" }),
    ]);
    ui.progressFill = h("span", { className: "xl-progress-fill" });
    ui.progress = h("div", {
      className: "xl-progress", role: "progress",
      attrs: { role: "progressbar", "aria-label": "Search progress", "aria-valuemin": 0, "aria-valuemax": 100 },
    }, [ui.progressFill]);
    ui.stop = h("button", {
      className: "xl-button", role: "stop-button", text: "Stop",
      attrs: { type: "button", "aria-label": "Stop the searches (keeps what was computed)" },
    });
    guardKeys(ui.stop, signal);
    ui.stop.addEventListener("click", requestStop, { signal });
    ui.running = h("span", { className: "xl-busy", role: "busy", attrs: { "aria-live": "polite" } }, [
      h("span", { className: "xl-spinner", attrs: { "aria-hidden": "true" } }),
      h("span", { text: "Searching…" }), ui.progress, ui.stop,
    ]);
    ui.status = h("div", { className: "xl-status", role: "status", attrs: { "aria-live": "polite" } });
    ui.summary = h("div", { className: "xl-status xl-summary", role: "summary" });
    ui.error = h("div", { className: "xl-error", role: "error", attrs: { role: "alert", hidden: true } });
    ui.rerun = h("button", {
      className: "xl-button", role: "rerun-button", text: "Run again",
      attrs: { type: "button", "aria-label": "Run the stopped searches again from their inputs" },
    });
    guardKeys(ui.rerun, signal);
    ui.rerun.addEventListener("click", requestRerun, { signal });
    root.append(h("div", { className: "xl-header" }, [title, ui.running, ui.rerun]), ui.status, ui.summary,
      ui.error);

    if (data.n > 1) {
      ui.picker = inputPicker({
        x: data.arrays.x, shape: data.shape, range: data.meta.pixel_range, size: CF_THUMB_SIZE, signal,
        labels: Array.from({ length: data.n }, (_, i) => `Input ${i + 1}, predicted ${data.names[data.source[i]]}`),
        onSelect: selectIndex,
      });
      root.appendChild(ui.picker.node);
    }

    const shape = data.shape;
    ui.input = pixelFigure({ caption: "Input x", role: "input-canvas", shape, size: CF_IMAGE_SIZE });
    ui.legendHigh = h("span");
    const legend = h("div", { className: "xl-colorbar", role: "difference-legend" }, [
      h("span", { className: "xl-colorbar-ramp", style: { background: sequentialGradient() } }),
      h("div", { className: "xl-colorbar-labels" }, [h("span", { text: "0" }), ui.legendHigh]),
      h("span", { className: "xl-colorbar-caption", text: "|x − x′|" }),
    ]);
    ui.input.node.appendChild(legend);
    const methods = h("div", { className: "xl-cf-methods" });
    ui.panels = {};
    for (const m of data.meta.methods) methods.appendChild(buildMethod(m));
    root.appendChild(h("div", { className: "xl-main" }, [h("div", { className: "xl-cf-input" }, [ui.input.node]),
      methods]));
    root.appendChild(buildCurve());

    const panel = h("div", { className: "xl-controls" });
    ui.alignSelect = selectControl({ role: "align-select", label: "Position by", signal, onChange: setAlign });
    setOptions(ui.alignSelect, ALIGN_OPTIONS, view.align);
    ui.slider = rangeControl({
      role: "step-slider", label: "Position along the searches", count: FRACTION_POSITIONS + 1, signal,
      onInput: onSlider,
    });
    ui.sliderValue = h("output", { className: "xl-value", role: "step-value" });
    panel.appendChild(controlRow("Position", [ui.alignSelect, h("div", { className: "xl-slider" }, [ui.slider]),
      ui.sliderValue], "position"));
    ui.targetSelect = selectControl({
      role: "target-select", label: "Target class of the selected input", signal, onChange: requestTarget,
    });
    panel.appendChild(controlRow("Target", [ui.targetSelect,
      h("span", { className: "xl-hint", text: "recomputes this input in the kernel" })]));
    root.appendChild(panel);
    root.appendChild(h("p", { className: "xl-help", role: "help", text: CF_HELP }));
  }

  /** @param {string} m */
  function buildMethod(m) {
    const info = METHOD_INFO[/** @type {keyof typeof METHOD_INFO} */ (m)];
    const generator = `${data.meta.generator}${data.meta.exact ? ", exact inverse" : ", approximate inverse"}`;
    const sub = m === "latent" ? `generator: ${generator}` : "gradient ascent on the pixels";
    const state = h("span", { className: "xl-cf-state", role: `${m}-state` });
    const frame = pixelFigure({ caption: "Frame x′", role: `${m}-frame-canvas`, shape: data.shape, size: CF_IMAGE_SIZE });
    const diff = pixelFigure({ caption: "|x − x′|", role: `${m}-difference-canvas`, shape: data.shape, size: CF_IMAGE_SIZE });
    const bars = probabilityBars({
      names: data.names, title: "Class probabilities of x′", role: `${m}-probabilities`,
      context: ` in the ${m} frame`, compact: true,
    });
    const node = h("section", { className: `xl-cf-method xl-cf-${m}`, role: `${m}-panel`, attrs: { "aria-label": info.title } }, [
      h("div", { className: "xl-cf-method-title" }, [
        h("span", { className: "xl-cf-swatch" }), h("span", { className: "xl-cf-name", text: info.title }),
        h("span", { className: "xl-cf-sub", text: sub }), state,
      ]),
      h("div", { className: "xl-cf-row" }, [frame.node, diff.node, bars.node]),
    ]);
    ui.panels[m] = { node, state, frame, diff, bars };
    return node;
  }

  function buildCurve() {
    ui.curve = h("canvas", {
      className: "xl-curve", role: "confidence-canvas",
      attrs: { role: "img", "aria-label": "Target-class confidence along each search, with the position marked" },
    });
    const legend = h("div", { className: "xl-map-legend", role: "curve-legend" });
    for (const m of data.meta.methods) {
      const info = METHOD_INFO[/** @type {keyof typeof METHOD_INFO} */ (m)];
      legend.appendChild(h("span", { className: "xl-legend-item" }, [
        h("span", { className: `xl-swatch-line xl-cf-line-${m}` }), h("span", { text: info.title })]));
    }
    legend.appendChild(h("span", { className: "xl-legend-item" }, [
      h("span", { className: "xl-swatch-line xl-cf-line-threshold" }), h("span", { text: `threshold ${data.meta.threshold}` })]));
    ui.curveTitle = h("div", { className: "xl-panel-title" });
    return h("figure", { className: "xl-figure xl-curve-figure" }, [ui.curveTitle, ui.curve, legend]);
  }

  // ---- interaction ---------------------------------------------------------------------
  /** @param {number} i */
  function selectIndex(i) {
    view.index = i;
    syncs.index.push(i);
    if (view.align === "step") view.follow = view.step >= extent(i);
    scheduler.request();
  }

  /** @param {number} position */
  function onSlider(position) {
    if (view.align === "step") {
      view.step = position;
      view.follow = position >= extent(view.index);
      syncs.step.push(position);
    } else {
      view.fraction = position / FRACTION_POSITIONS;
      syncs.fraction.push(view.fraction);
    }
    scheduler.request();
  }

  /** @param {string} value */
  function setAlign(value) {
    syncs.step.flush();
    syncs.fraction.flush();
    if (value === "step") {
      // keep the latent frame on show where it is
      const r = shownRecord("latent", view.index);
      view.step = r >= 0 ? data.methods.latent.recordSteps[r] : 0;
      view.follow = view.step >= extent(view.index);
      view.align = "step";
      syncs.step.push(view.step);
      syncs.step.flush();
    } else {
      view.align = "fraction";
      syncs.fraction.push(view.fraction);
      syncs.fraction.flush();
    }
    syncs.align.push(view.align);
    syncs.align.flush();
    scheduler.request();
  }

  /** @param {string} value */
  function requestTarget(value) {
    view.pendingTarget = true;
    syncs.index.flush();
    model.send({ event: "target", index: view.index, target: Number(value) });
    updateRunning();
  }

  function requestStop() {
    view.stopping = true;
    model.send({ event: "stop" });
    updateRunning();
  }

  function requestRerun() {
    view.rerunning = true;
    model.send({ event: "rerun" });
    updateRunning();
  }

  /** Whether any search was stopped before it finished (Run again restarts those). */
  function anyStopped() {
    return data.meta.methods.some((/** @type {string} */ m) => data.methods[m].status.includes(STOPPED));
  }

  function updateRunning() {
    if (!ui.running) return;
    const running = Boolean(model.get("running"));
    if (!running) view.stopping = false;
    const progress = Math.round(100 * Number(model.get("progress") || 0));
    ui.running.hidden = !running && !view.pendingTarget;
    ui.progress.setAttribute("aria-valuenow", String(progress));
    ui.progressFill.style.width = `${progress}%`;
    ui.stop.disabled = view.stopping || !running;
    ui.stop.textContent = view.stopping ? "Stopping…" : "Stop";
    ui.rerun.hidden = running || view.pendingTarget || !anyStopped();
    ui.rerun.disabled = view.rerunning;
    ui.summary.textContent = String(model.get("status") || "");
    root.dataset.running = String(running);
    ui.targetSelect.disabled = view.pendingTarget;
  }

  function onError() {
    const message = String(model.get("error") || "");
    if (message) view.pendingTarget = false;
    if (ui.error) {
      ui.error.textContent = message;
      ui.error.hidden = !message;
    }
    updateRunning();
    scheduler.request(); // resets the target select to the state the payload holds
  }

  // ---- drawing -------------------------------------------------------------------------
  function draw() {
    if (!data) return;
    const n = Math.min(view.index, data.n - 1);
    const source = data.source[n];
    const target = data.target[n];
    const [lo, hi] = data.meta.pixel_range;
    const x = readBlock(data.arrays.x, [n]);
    drawImageData(ui.input.canvas, inputImage(x, data.shape, lo, hi));
    if (ui.picker) ui.picker.select(n);

    // one difference scale for both methods: the larger final change
    let limit = 1e-6;
    for (const m of data.meta.methods) {
      const tr = track(m, n);
      if (!tr) continue;
      const last = readBlock(data.methods[m].frames, [tr.end - 1]);
      for (let i = 0; i < x.length; i++) limit = Math.max(limit, Math.abs(x[i] - last[i]));
    }
    ui.legendHigh.textContent = formatNumber(limit, 2);

    /** @type {Record<string, { step: number, p: number } | null>} */
    const shown = {};
    for (const m of data.meta.methods) shown[m] = drawMethod(m, n, x, limit, source, target);
    drawCurve(n, target);
    drawControls(n, source, target);

    const parts = [`Input ${n + 1} of ${data.n} · predicted ${data.names[source]} → target ${data.names[target]}`];
    for (const m of data.meta.methods) {
      const s = shown[m];
      if (s) parts.push(`${m}: step ${s.step}, p(${data.names[target]}) = ${formatNumber(s.p, 2)}`);
    }
    ui.status.textContent = parts.join(" · ");
    root.dataset.index = String(n);
    root.dataset.align = view.align;
    for (const m of data.meta.methods) {
      const s = shown[m];
      root.dataset[`${m}Step`] = s ? String(s.step) : "";
      root.dataset[`${m}TargetProb`] = s ? String(s.p) : "";
    }
    if (!view.drawn) {
      view.drawn = true;
      root.dataset.crosslensReady = "true";
    }
  }

  /**
   * @param {string} m
   * @param {number} n
   * @param {Float32Array} x
   * @param {number} limit
   * @param {number} source
   * @param {number} target
   */
  function drawMethod(m, n, x, limit, source, target) {
    const panel = ui.panels[m];
    const t = data.methods[m];
    const status = STATUS[t.status[n]] || "queued";
    const steps = t.steps[n];
    const r = shownRecord(m, n);
    panel.node.dataset.status = status;
    let state;
    if (status === "done") {
      state = t.success[n] ? `reached p > ${data.meta.threshold} in ${steps} steps`
        : `not reached in ${steps} steps`;
    } else if (status === "running") state = `running · step ${steps}`;
    else if (status === "stopped") state = r >= 0 && steps > 0 ? `stopped at step ${steps}` : "stopped";
    else state = "queued";
    panel.state.textContent = state;
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
    drawImageData(panel.frame.canvas, inputImage(frame, data.shape, data.meta.pixel_range[0], data.meta.pixel_range[1]));
    drawImageData(panel.diff.canvas, magnitudeImage(x.map((v, i) => v - frame[i]), data.shape, limit));
    panel.frame.label.textContent = `x′ at step ${step}`;
    panel.diff.label.textContent = "|x − x′|";
    panel.bars.update(probs, source, target);
    return { step, p: probs[target] };
  }

  /**
   * @param {number} n
   * @param {number} target
   */
  function drawCurve(n, target) {
    const width = CURVE_WIDTH;
    if (!ui.curveCtx) ui.curveCtx = sizeVectorCanvas(ui.curve, width, CURVE_HEIGHT);
    const ctx = ui.curveCtx;
    const box = {
      left: CURVE_MARGIN.left, top: CURVE_MARGIN.top,
      width: width - CURVE_MARGIN.left - CURVE_MARGIN.right, height: CURVE_HEIGHT - CURVE_MARGIN.top - CURVE_MARGIN.bottom,
    };
    const byStep = view.align === "step";
    const xMax = byStep ? Math.max(extent(n), 1) : 1;
    const sx = (/** @type {number} */ v) => box.left + (v / xMax) * box.width;
    const sy = (/** @type {number} */ v) => box.top + (1 - v) * box.height;
    const muted = themeCss(root, "--jp-ui-font-color2", "rgba(0, 0, 0, 0.6)");
    const line = themeCss(root, "--jp-border-color1", "#bdbdbd");
    const ink = themeCss(root, "--jp-ui-font-color1", "rgba(0, 0, 0, 0.87)");
    ctx.clearRect(0, 0, width, CURVE_HEIGHT);
    const xTicks = byStep
      ? niceTicks(0, xMax, 6).filter((v) => Number.isInteger(v)).map((v) => /** @type {[number, string]} */ ([v, String(v)]))
      : [0, 0.25, 0.5, 0.75, 1].map((v) => /** @type {[number, string]} */ ([v, `${Math.round(100 * v)} %`]));
    const yTicks = [0, 0.5, 1].map((v) => /** @type {[number, string]} */ ([v, formatNumber(v, 1)]));
    drawAxes(ctx, box, xTicks, yTicks, sx, sy, { font: `11px ${getComputedStyle(root).fontFamily}`, text: muted, line });

    // the threshold
    ctx.strokeStyle = muted;
    ctx.lineWidth = 1;
    ctx.setLineDash([2, 3]);
    strokePolyline(ctx, [[box.left, sy(data.meta.threshold)], [box.left + box.width, sy(data.meta.threshold)]]);
    ctx.setLineDash([]);

    // each method's confidence in the target, and the record on show
    for (const m of data.meta.methods) {
      const tr = track(m, n);
      if (!tr) continue;
      const info = METHOD_INFO[/** @type {keyof typeof METHOD_INFO} */ (m)];
      const color = themeCss(root, info.color[0], info.color[1]);
      const t = data.methods[m];
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
      const r = shownRecord(m, n);
      ctx.beginPath();
      ctx.arc(sx(along(r)), sy(conf(r)), 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = color;
      ctx.fill();
    }
    // the position
    const at = byStep ? Math.min(view.step, xMax) : view.fraction;
    ctx.strokeStyle = ink;
    ctx.lineWidth = 1.2;
    strokePolyline(ctx, [[sx(at), box.top], [sx(at), box.top + box.height]]);
    ui.curveTitle.textContent = `Confidence in the target class ${data.names[target]}, by ${byStep ? "Adam step" : "share of each path"}`;
  }

  /**
   * @param {number} n
   * @param {number} source
   * @param {number} target
   */
  function drawControls(n, source, target) {
    ui.alignSelect.value = view.align;
    if (view.align === "step") {
      const most = extent(n);
      ui.slider.max = String(Math.max(most, 1));
      ui.slider.value = String(Math.min(view.step, most));
      const text = `step ${Math.min(view.step, most)} / ${most}`;
      ui.sliderValue.textContent = text;
      ui.slider.setAttribute("aria-valuetext", text);
    } else {
      ui.slider.max = String(FRACTION_POSITIONS);
      ui.slider.value = String(Math.round(view.fraction * FRACTION_POSITIONS));
      const text = `${Math.round(100 * view.fraction)} % of each path`;
      ui.sliderValue.textContent = text;
      ui.slider.setAttribute("aria-valuetext", text);
    }
    const options = data.names.map((/** @type {string} */ name, /** @type {number} */ c) => ({
      value: String(c), label: c === source ? `${name} (predicted)` : name, disabled: c === source }));
    setOptions(ui.targetSelect, options, String(target));
  }

  // ---- wiring --------------------------------------------------------------------------
  const disconnect = connectModel(model, {
    "change:_payload": load, "change:running": updateRunning, "change:progress": updateRunning,
    "change:status": updateRunning, "change:error": onError,
  }, syncs);
  load();
  onError();

  return () => {
    controller.abort();
    scheduler.cancel();
    disconnect();
    root.remove();
  };
}

export default { render };
