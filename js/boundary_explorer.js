// @ts-check
// crosslens.BoundaryExplorer, browser half. Walks inputs across (and along) the decision
// boundary of an invertible classifier (Zhuang et al. 2019, arXiv 1910.00406).
//
// Everything drawn comes from ONE binary payload (trait `_payload`): frames, probabilities,
// region grids, curves. Sliders redraw from it in the next animation frame and sync their
// position to Python throttled; only the target select goes back to the kernel (custom
// message "target"), with a busy indicator until the new payload arrives.
import { decodePayload, readBlock, valueAt } from "./payload.js";
import { classColor, cssColor, divergingGradient } from "./colormaps.js";
import {
  blend, drawAxes, drawImageData, inputImage, lighten, niceTicks, pixelImage, shade, signedImage,
  sizeVectorCanvas, strokePolyline, themeColor, themeCss,
} from "./draw.js";
import {
  connectModel, controlRow, formatNumber, frameScheduler, h, rangeControl, rangeTicks, selectControl, setOptions,
  traitSync,
} from "./controls.js";
import { imageShapeOf, inputPicker, pixelFigure, probabilityBars } from "./panels.js";

const IMAGE_CSS_SIZE = 144;
const THUMB_CSS_SIZE = 34;
const MAP_CSS_SIZE = 400;
const MAP_MARGIN = { left: 40, right: 10, top: 10, bottom: 28 };
const HELP_IMAGE = "Frames invert z + t (z_p − z) in feature space: t = 0 is the input, t = 1 the nearest point on the "
  + "decision boundary (the two classes tie), t = 2 its mirror image. Moving along the boundary keeps the two classes' "
  + "score gap of the across frame. The overlay colors x − frame (red: higher in x, blue: higher in the frame) "
  + "or the first-order Taylor importance.";
const HELP_PLANAR = "Click a point (or use the Point slider) to select it. Its path runs straight across the boundary "
  + "in feature space: solid up to the boundary point ◆ (t = 1), dashed on to the mirror point (t = 2).";
const OVERLAYS = [
  { value: "difference", label: "x − frame (what changes)", caption: "x − frame" },
  { value: "importance", label: "Taylor importance at x", caption: "Importance" },
];

/**
 * @param {Float32Array} values sorted ascending
 * @param {number} v
 */
function nearestIndex(values, v) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (Math.abs(values[i] - v) < Math.abs(values[best] - v)) best = i;
  return best;
}

/**
 * @param {{ model: any, el: HTMLElement }} context
 */
function render({ model, el }) {
  const controller = new AbortController();
  const { signal } = controller;
  const root = h("div", { className: "crosslens xl-boundary" });
  el.appendChild(root);

  /** Front-end view state; indices into the payload's axes. */
  const view = {
    index: 0, direction: 0, amountIndex: 0, tIndex: 0,
    overlay: String(model.get("overlay") || "difference"), opacity: Number(model.get("opacity") ?? 0.7),
    pendingTarget: false, drawn: false,
  };
  /** @type {any} */
  let data = null;
  /** @type {Record<string, any>} */
  const ui = {};
  const scheduler = frameScheduler(draw);

  const syncs = {
    t: traitSync(model, "t", (v) => { if (data) view.tIndex = nearestIndex(data.t, v); scheduler.request(); }),
    index: traitSync(model, "index", (v) => { view.index = v; scheduler.request(); }),
    direction: traitSync(model, "direction", (v) => { view.direction = v; scheduler.request(); }),
    amount: traitSync(model, "amount", (v) => { if (data) view.amountIndex = nearestIndex(data.amounts, v); scheduler.request(); }),
    overlay: traitSync(model, "overlay", (v) => { view.overlay = v; scheduler.request(); }),
    opacity: traitSync(model, "opacity", (v) => { view.opacity = v; scheduler.request(); }),
  };

  // ---- payload -------------------------------------------------------------------------
  function load() {
    const { meta, arrays } = decodePayload(model.get("_payload"));
    const shape = arrays.probs.shape; // (N, K, A, T, C)
    const first = data === null;
    data = {
      meta, arrays, kind: meta.kind, n: shape[0], kCount: shape[1], aCount: shape[2], tCount: shape[3], classes: shape[4],
      t: readBlock(arrays.t, []), amounts: readBlock(arrays.amounts, []),
      source: arrays.source.data, target: arrays.target.data, requested: arrays.requested.data,
      names: meta.class_names.map(String), regionKey: "",
    };
    if (first) {
      view.index = Math.min(Math.max(0, model.get("index") | 0), data.n - 1);
      view.direction = Math.min(Math.max(0, model.get("direction") | 0), Math.max(data.kCount - 1, 0));
      view.amountIndex = nearestIndex(data.amounts, Number(model.get("amount")) || 0);
      view.tIndex = nearestIndex(data.t, Number(model.get("t")) || 0);
      build();
    }
    view.pendingTarget = false;
    updateBusy();
    scheduler.request();
  }

  // ---- layout --------------------------------------------------------------------------
  function build() {
    const planar = data.kind === "planar";
    const title = h("div", { className: "xl-title" }, [
      h("span", { className: "xl-title-main", text: "Decision boundary explorer" }),
      h("span", { className: "xl-title-sub", text: "invertible classifier · Zhuang et al. 2019" }),
    ]);
    ui.busy = h("span", { className: "xl-busy", role: "busy", attrs: { "aria-live": "polite", hidden: true } }, [
      h("span", { className: "xl-spinner", attrs: { "aria-hidden": "true" } }),
      h("span", { text: "Computing…" }),
    ]);
    ui.status = h("div", { className: "xl-status", role: "status", attrs: { "aria-live": "polite" } });
    ui.error = h("div", { className: "xl-error", role: "error", attrs: { role: "alert", hidden: true } });
    root.appendChild(h("div", { className: "xl-header" }, [title, ui.busy]));
    root.appendChild(ui.status);
    root.appendChild(ui.error);

    if (!planar && data.n > 1) root.appendChild(buildPicker());

    const main = h("div", { className: "xl-main" });
    main.appendChild(planar ? buildMap() : buildImages());
    main.appendChild(buildProbabilities());
    root.appendChild(main);

    const panel = h("div", { className: "xl-controls" });
    if (planar && data.n > 1) {
      ui.indexSlider = rangeControl({
        role: "index-slider", label: "Selected point", count: data.n, value: view.index, signal,
        onInput: (i) => selectIndex(i),
      });
      ui.indexValue = h("output", { className: "xl-value", role: "index-value" });
      panel.appendChild(controlRow("Point", [ui.indexSlider, ui.indexValue]));
    }
    panel.appendChild(buildAcross());
    if (data.kCount > 0 && data.aCount > 1) panel.appendChild(buildAlong());
    if (!planar) panel.appendChild(buildOverlayControls());
    ui.targetSelect = selectControl({
      role: "target-select", label: "Target class: the class across the boundary", signal, onChange: requestTarget,
    });
    panel.appendChild(controlRow("Target", [ui.targetSelect,
      h("span", { className: "xl-hint", text: "recomputes in the kernel" })]));
    root.appendChild(panel);
    root.appendChild(h("p", { className: "xl-help", role: "help", text: planar ? HELP_PLANAR : HELP_IMAGE }));
  }

  function buildPicker() {
    ui.picker = inputPicker({
      x: data.arrays.x, shape: imageShapeOf(data.meta), range: data.meta.pixel_range, size: THUMB_CSS_SIZE, signal,
      labels: Array.from({ length: data.n }, (_, i) => `Input ${i + 1}, predicted ${data.names[data.source[i]]}`),
      onSelect: selectIndex,
    });
    return ui.picker.node;
  }

  function buildImages() {
    const shape = imageShapeOf(data.meta);
    const size = IMAGE_CSS_SIZE;
    ui.original = pixelFigure({ caption: "Input x", role: "original-canvas", shape, size });
    ui.frame = pixelFigure({ caption: "Frame", role: "frame-canvas", shape, size });
    ui.overlay = pixelFigure({ caption: "x − frame", role: "overlay-canvas", shape, size });
    ui.legendLow = h("span", { className: "xl-legend-low" });
    ui.legendHigh = h("span", { className: "xl-legend-high" });
    const legend = h("div", { className: "xl-colorbar", role: "overlay-legend" }, [
      h("span", { className: "xl-colorbar-ramp", style: { background: divergingGradient() } }),
      h("div", { className: "xl-colorbar-labels" }, [ui.legendLow, h("span", { text: "0" }), ui.legendHigh]),
    ]);
    ui.overlay.node.appendChild(legend);
    return h("div", { className: "xl-images" }, [ui.original.node, ui.frame.node, ui.overlay.node]);
  }

  function buildMap() {
    ui.map = h("canvas", {
      className: "xl-map", role: "map-canvas",
      attrs: { role: "img", "aria-label": "Decision regions, boundary curves, data points and the selected point's path" },
    });
    ui.mapCtx = sizeVectorCanvas(ui.map, MAP_CSS_SIZE, MAP_CSS_SIZE);
    ui.map.addEventListener("click", onMapClick, { signal });
    const legend = h("div", { className: "xl-map-legend", role: "map-legend" });
    data.names.forEach((/** @type {string} */ name, /** @type {number} */ k) => {
      legend.appendChild(h("span", { className: "xl-legend-item" }, [
        h("span", { className: "xl-swatch", style: { background: cssColor(classColor(k)) } }),
        h("span", { text: name }),
      ]));
    });
    legend.appendChild(h("span", { className: "xl-legend-item" }, [
      h("span", { className: "xl-swatch-line" }), h("span", { text: "decision boundary" })]));
    legend.appendChild(h("span", { className: "xl-legend-item" }, [
      h("span", { className: "xl-swatch-path" }), h("span", { text: "path (dashed past the boundary)" })]));
    ui.coords = h("div", { className: "xl-coords", role: "coordinates" });
    return h("figure", { className: "xl-figure xl-map-figure" }, [ui.map, legend, ui.coords]);
  }

  function buildProbabilities() {
    ui.bars = probabilityBars({ names: data.names, title: "Class probabilities of the frame" });
    return ui.bars.node;
  }

  function buildAcross() {
    const tMax = data.t[data.t.length - 1];
    ui.tSlider = rangeControl({
      role: "t-slider", label: "Position across the boundary, t", count: data.tCount, value: view.tIndex, signal,
      onInput: (i) => { view.tIndex = i; syncs.t.push(data.t[i]); scheduler.request(); },
    });
    ui.tValue = h("output", { className: "xl-value", role: "t-value" });
    /** @type {Array<{ fraction: number, label: string, emphasis?: boolean }>} */
    const ticks = [{ fraction: 0, label: "0 · input" }];
    if (tMax >= 1) ticks.push({ fraction: 1 / tMax, label: "1 · boundary", emphasis: true });
    if (tMax > 1.15) ticks.push({ fraction: 1, label: tMax === 2 ? "2 · mirror" : formatNumber(tMax, 1) });
    const track = h("div", { className: "xl-slider" }, [ui.tSlider, rangeTicks(ticks, "t-ticks")]);
    return controlRow("Across", [track, ui.tValue], "across");
  }

  function buildAlong() {
    ui.directionSelect = selectControl({
      role: "direction-select", label: "Direction along the boundary", signal,
      onChange: (v) => { view.direction = Number(v); syncs.direction.push(view.direction); scheduler.request(); },
    });
    setOptions(ui.directionSelect, Array.from({ length: data.kCount }, (_, k) => ({
      value: String(k), label: `Direction ${k + 1}` })), String(view.direction));
    ui.amountSlider = rangeControl({
      role: "amount-slider", label: "Position along the boundary, in standard deviations", count: data.aCount,
      value: view.amountIndex, signal,
      onInput: (i) => { view.amountIndex = i; syncs.amount.push(data.amounts[i]); scheduler.request(); },
    });
    ui.amountValue = h("output", { className: "xl-value", role: "amount-value" });
    const lo = data.amounts[0];
    const hi = data.amounts[data.amounts.length - 1];
    const ticks = [
      { fraction: 0, label: `${formatNumber(lo, 1)} σ` },
      { fraction: (0 - lo) / (hi - lo || 1), label: "0", emphasis: true },
      { fraction: 1, label: `+${formatNumber(hi, 1)} σ` },
    ];
    const track = h("div", { className: "xl-slider" }, [ui.amountSlider, rangeTicks(ticks, "amount-ticks")]);
    return controlRow("Along", [ui.directionSelect, track, ui.amountValue], "along");
  }

  function buildOverlayControls() {
    ui.overlaySelect = selectControl({
      role: "overlay-select", label: "Overlay map", signal,
      onChange: (v) => { view.overlay = v; syncs.overlay.push(v); scheduler.request(); },
    });
    setOptions(ui.overlaySelect, OVERLAYS.map(({ value, label }) => ({ value, label })), view.overlay);
    ui.opacitySlider = rangeControl({
      role: "opacity-slider", label: "Overlay opacity", count: 21, value: Math.round(view.opacity * 20), signal,
      onInput: (i) => { view.opacity = i / 20; syncs.opacity.push(view.opacity); scheduler.request(); },
    });
    ui.opacityValue = h("output", { className: "xl-value", role: "opacity-value" });
    return controlRow("Overlay", [ui.overlaySelect, h("span", { className: "xl-inline-label", text: "opacity" }),
      ui.opacitySlider, ui.opacityValue], "overlay");
  }

  // ---- interaction ---------------------------------------------------------------------
  /** @param {number} i */
  function selectIndex(i) {
    view.index = i;
    syncs.index.push(i);
    scheduler.request();
  }

  /** @param {string} value */
  function requestTarget(value) {
    view.pendingTarget = true;
    updateBusy();
    syncs.index.flush();
    model.send({ event: "target", index: view.index, target: value === "auto" ? null : Number(value) });
  }

  /** @param {MouseEvent} event */
  function onMapClick(event) {
    const rect = ui.map.getBoundingClientRect();
    const px = (event.clientX - rect.left) * (MAP_CSS_SIZE / rect.width);
    const py = (event.clientY - rect.top) * (MAP_CSS_SIZE / rect.height);
    const { sx, sy } = mapScales();
    const xs = data.arrays.x.data;
    let best = 0;
    let bestDistance = Infinity;
    for (let i = 0; i < data.n; i++) {
      const d = (sx(xs[2 * i]) - px) ** 2 + (sy(xs[2 * i + 1]) - py) ** 2;
      if (d < bestDistance) { bestDistance = d; best = i; }
    }
    selectIndex(best);
  }

  function updateBusy() {
    const busy = Boolean(model.get("busy")) || view.pendingTarget;
    if (!ui.busy) return;
    ui.busy.hidden = !busy;
    root.dataset.busy = String(busy);
    if (ui.targetSelect) ui.targetSelect.disabled = busy;
  }

  function onError() {
    const message = String(model.get("error") || "");
    if (message) view.pendingTarget = false;
    if (ui.error) {
      ui.error.textContent = message;
      ui.error.hidden = !message;
    }
    updateBusy();
    scheduler.request(); // resets the target select to the state the payload holds
  }

  /** @param {any} content */
  function onMessage(content) {
    if (content && content.event === "target-done") {
      view.pendingTarget = false;
      updateBusy();
      scheduler.request();
    }
  }

  // ---- drawing -------------------------------------------------------------------------
  function draw() {
    if (!data) return;
    const n = Math.min(view.index, data.n - 1);
    const k = data.kCount > 0 ? Math.min(view.direction, data.kCount - 1) : 0;
    const a = data.aCount > 1 ? view.amountIndex : 0;
    const ti = view.tIndex;
    const probs = readBlock(data.arrays.probs, [n, k, a, ti]);
    const source = data.source[n];
    const target = data.target[n];
    if (data.kind === "planar") drawMap(n, k, a, ti, probs);
    else drawImages(n, k, a, ti);
    ui.bars.update(probs, source, target);
    drawControls(n, source, target);

    let top = 0;
    for (let c = 1; c < probs.length; c++) if (probs[c] > probs[top]) top = c;
    const where = data.kind === "planar" ? "Point" : "Input";
    ui.status.textContent = `${where} ${n + 1} of ${data.n} · predicted ${data.names[source]} → target ${data.names[target]}`
      + ` · t = ${formatNumber(data.t[ti])} · frame classified ${data.names[top]} (${Math.round(100 * probs[top])} %)`;
    root.dataset.index = String(n);
    root.dataset.t = String(data.t[ti]);
    root.dataset.targetProb = String(probs[target]);
    root.dataset.frameClass = String(top);
    if (!view.drawn) {
      view.drawn = true;
      root.dataset.crosslensReady = "true";
    }
  }

  /**
   * @param {number} n
   * @param {number} k
   * @param {number} a
   * @param {number} ti
   */
  function drawImages(n, k, a, ti) {
    const shape = imageShapeOf(data.meta);
    const [lo, hi] = data.meta.pixel_range;
    const x = readBlock(data.arrays.x, [n]);
    const frame = readBlock(data.arrays.frames, [n, k, a, ti]);
    const base = inputImage(x, shape, lo, hi);
    drawImageData(ui.original.canvas, base);
    const quietBase = lighten(base, 0.55);
    drawImageData(ui.frame.canvas, inputImage(frame, shape, lo, hi));
    let signed;
    let limit;
    if (view.overlay === "importance") {
      signed = readBlock(data.arrays.importance, [n]);
      limit = valueAt(data.arrays.importance_limit, [n]);
    } else {
      signed = x.map((v, i) => v - frame[i]);
      limit = valueAt(data.arrays.difference_limit, [n]);
    }
    drawImageData(ui.overlay.canvas, blend(quietBase, signedImage(signed, shape, limit), view.opacity));
    const overlay = OVERLAYS.find((o) => o.value === view.overlay) || OVERLAYS[0];
    ui.overlay.label.textContent = overlay.caption;
    ui.frame.label.textContent = `Frame at t = ${formatNumber(data.t[ti])}`;
    ui.legendLow.textContent = `−${formatNumber(limit, 2)}`;
    ui.legendHigh.textContent = `+${formatNumber(limit, 2)}`;
    if (ui.picker) ui.picker.select(n);
  }

  function mapScales() {
    const [xmin, xmax, ymin, ymax] = data.meta.bounds;
    const w = MAP_CSS_SIZE - MAP_MARGIN.left - MAP_MARGIN.right;
    const hgt = MAP_CSS_SIZE - MAP_MARGIN.top - MAP_MARGIN.bottom;
    return {
      w, h: hgt, xmin, xmax, ymin, ymax,
      sx: (/** @type {number} */ v) => MAP_MARGIN.left + ((v - xmin) / (xmax - xmin)) * w,
      sy: (/** @type {number} */ v) => MAP_MARGIN.top + ((ymax - v) / (ymax - ymin)) * hgt,
    };
  }

  /** The region grid as an image, shaded per class over the theme background. */
  function regionImage(/** @type {[number, number, number]} */ background) {
    const key = background.join(",");
    if (data.regionKey === key) return data.regionImage;
    const grid = data.arrays.region_probs; // (R_y, R_x, C), row 0 at ymin
    const [rows, cols, classes] = grid.shape;
    const values = readBlock(grid, []);
    data.regionImage = pixelImage(cols, rows, (i) => {
      const row = rows - 1 - Math.floor(i / cols);
      const base = (row * cols + (i % cols)) * classes;
      let top = 0;
      for (let c = 1; c < classes; c++) if (values[base + c] > values[base + top]) top = c;
      const confidence = (values[base + top] - 1 / classes) / (1 - 1 / classes);
      return shade(background, classColor(top), confidence);
    });
    data.regionKey = key;
    return data.regionImage;
  }

  /**
   * @param {number} n
   * @param {number} k
   * @param {number} a
   * @param {number} ti
   * @param {Float32Array} probs
   */
  function drawMap(n, k, a, ti, probs) {
    const ctx = ui.mapCtx;
    const background = themeColor(root, "--jp-layout-color1", [255, 255, 255]);
    const ink = themeColor(root, "--jp-ui-font-color1", [33, 33, 33]);
    const muted = themeCss(root, "--jp-ui-font-color2", "rgba(0, 0, 0, 0.6)");
    const frameLine = themeCss(root, "--jp-border-color1", "#bdbdbd");
    const { sx, sy, w, h: hgt, xmin, xmax, ymin, ymax } = mapScales();
    ctx.clearRect(0, 0, MAP_CSS_SIZE, MAP_CSS_SIZE);
    ctx.fillStyle = cssColor(background);
    ctx.fillRect(0, 0, MAP_CSS_SIZE, MAP_CSS_SIZE);
    drawImageData(ui.map, regionImage(background), true, [MAP_MARGIN.left, MAP_MARGIN.top, w, hgt]);

    // axes
    const ticks = (/** @type {number} */ lo, /** @type {number} */ hi) => niceTicks(lo, hi, 5).map(
      (v) => /** @type {[number, string]} */ ([v, formatNumber(v, 1)]));
    drawAxes(ctx, { left: MAP_MARGIN.left, top: MAP_MARGIN.top, width: w, height: hgt }, ticks(xmin, xmax),
      ticks(ymin, ymax), sx, sy, { font: `11px ${getComputedStyle(root).fontFamily}`, text: muted, line: frameLine });

    ctx.save();
    ctx.beginPath();
    ctx.rect(MAP_MARGIN.left, MAP_MARGIN.top, w, hgt);
    ctx.clip();

    // boundary curves (offsets delimit each polyline)
    const points = data.arrays.curve_points.data;
    const offsets = data.arrays.curve_offsets.data;
    ctx.strokeStyle = cssColor(ink, 0.9);
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    for (let c = 0; c + 1 < offsets.length; c++) {
      /** @type {Array<[number, number]>} */
      const line = [];
      for (let p = offsets[c]; p < offsets[c + 1]; p++) line.push([sx(points[2 * p]), sy(points[2 * p + 1])]);
      strokePolyline(ctx, line);
    }

    // reference points, then the inputs (colored by predicted class)
    if (data.arrays.reference) {
      const ref = data.arrays.reference.data;
      ctx.fillStyle = cssColor(ink, 0.22);
      for (let i = 0; i < ref.length; i += 2) {
        ctx.beginPath();
        ctx.arc(sx(ref[i]), sy(ref[i + 1]), 1.8, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    const xs = data.arrays.x.data;
    ctx.lineWidth = 0.8;
    ctx.strokeStyle = cssColor(background, 0.9);
    for (let i = 0; i < data.n; i++) {
      ctx.fillStyle = cssColor(classColor(data.source[i]));
      ctx.beginPath();
      ctx.arc(sx(xs[2 * i]), sy(xs[2 * i + 1]), 3.2, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }

    // the selected point's path: solid up to the boundary, dashed past it
    const path = readBlock(data.arrays.frames, [n, k, a]); // (T, 2)
    const onBoundary = nearestIndex(data.t, 1);
    /** @type {Array<[number, number]>} */
    const before = [];
    /** @type {Array<[number, number]>} */
    const after = [];
    for (let i = 0; i < data.tCount; i++) {
      const p = /** @type {[number, number]} */ ([sx(path[2 * i]), sy(path[2 * i + 1])]);
      if (i <= onBoundary) before.push(p);
      if (i >= onBoundary) after.push(p);
    }
    ctx.strokeStyle = cssColor(background, 0.85);
    ctx.lineWidth = 5;
    strokePolyline(ctx, before);
    strokePolyline(ctx, after);
    ctx.strokeStyle = cssColor(ink);
    ctx.lineWidth = 2.2;
    strokePolyline(ctx, before);
    ctx.setLineDash([5, 4]);
    strokePolyline(ctx, after);
    ctx.setLineDash([]);

    // the boundary point (exact projection when not moved along the boundary)
    const center = data.amounts.length > 1 ? nearestIndex(data.amounts, 0) : 0;
    const proj = a === center ? readBlock(data.arrays.x_proj, [n]) : path.slice(2 * onBoundary, 2 * onBoundary + 2);
    const bx = sx(proj[0]);
    const by = sy(proj[1]);
    ctx.beginPath();
    ctx.moveTo(bx, by - 6); ctx.lineTo(bx + 6, by); ctx.lineTo(bx, by + 6); ctx.lineTo(bx - 6, by); ctx.closePath();
    ctx.fillStyle = cssColor(background);
    ctx.fill();
    ctx.strokeStyle = cssColor(ink);
    ctx.lineWidth = 1.6;
    ctx.stroke();

    // the selected input and the current position
    ctx.beginPath();
    ctx.arc(sx(xs[2 * n]), sy(xs[2 * n + 1]), 7.5, 0, 2 * Math.PI);
    ctx.strokeStyle = cssColor(ink);
    ctx.lineWidth = 2;
    ctx.stroke();
    let top = 0;
    for (let c = 1; c < probs.length; c++) if (probs[c] > probs[top]) top = c;
    const cx = sx(path[2 * ti]);
    const cy = sy(path[2 * ti + 1]);
    ctx.beginPath();
    ctx.arc(cx, cy, 6.5, 0, 2 * Math.PI);
    ctx.fillStyle = cssColor(classColor(top));
    ctx.fill();
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = cssColor(background);
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(cx, cy, 8, 0, 2 * Math.PI);
    ctx.lineWidth = 1.2;
    ctx.strokeStyle = cssColor(ink);
    ctx.stroke();
    ctx.restore();

    ui.coords.textContent = `x = (${formatNumber(xs[2 * n])}, ${formatNumber(xs[2 * n + 1])})`
      + ` · current position (${formatNumber(path[2 * ti])}, ${formatNumber(path[2 * ti + 1])})`;
  }

  /**
   * @param {number} n
   * @param {number} source
   * @param {number} target
   */
  function drawControls(n, source, target) {
    ui.tSlider.value = String(view.tIndex);
    ui.tValue.textContent = `t = ${formatNumber(data.t[view.tIndex])}`;
    ui.tSlider.setAttribute("aria-valuetext", `t = ${formatNumber(data.t[view.tIndex])}`);
    if (ui.amountSlider) {
      const amount = data.amounts[view.amountIndex];
      ui.amountSlider.value = String(view.amountIndex);
      ui.amountValue.textContent = `${amount > 0 ? "+" : ""}${formatNumber(amount, 1)} σ`;
      ui.amountSlider.setAttribute("aria-valuetext", `${formatNumber(amount, 1)} standard deviations`);
      ui.directionSelect.value = String(view.direction);
    }
    if (ui.indexSlider) {
      ui.indexSlider.value = String(n);
      ui.indexValue.textContent = `${n + 1} / ${data.n}`;
    }
    if (ui.overlaySelect) {
      ui.overlaySelect.value = view.overlay;
      ui.opacitySlider.value = String(Math.round(view.opacity * 20));
      ui.opacityValue.textContent = `${Math.round(view.opacity * 100)} %`;
    }
    const requested = data.requested[n];
    const nearest = requested < 0 ? target : -1;
    const options = [{ value: "auto", label: nearest >= 0 ? `Nearest boundary (${data.names[nearest]})` : "Nearest boundary" }];
    data.names.forEach((/** @type {string} */ name, /** @type {number} */ c) => options.push({
      value: String(c), label: c === source ? `${name} (predicted)` : name, disabled: c === source }));
    setOptions(ui.targetSelect, options, requested < 0 ? "auto" : String(requested));
  }

  // ---- wiring --------------------------------------------------------------------------
  const disconnect = connectModel(model, {
    "change:_payload": load,
    "change:busy": () => { if (!model.get("busy")) view.pendingTarget = false; updateBusy(); },
    "change:error": onError,
    "msg:custom": onMessage,
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
