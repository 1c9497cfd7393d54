// @ts-check
// crosslens.BoundaryExplorer, browser half. Walks inputs across (and along) the decision
// boundary of an invertible classifier (Zhuang et al. 2019, arXiv 1910.00406).
//
// Everything drawn comes from ONE binary payload (trait `_payload`): frames, probabilities,
// region grids, curves. Sliders redraw from it in the next animation frame and sync their
// position to Python throttled; only the target select goes back to the kernel (the shell's
// custom message "target"), with a busy indicator until the new payload arrives.
import { readBlock, valueAt } from "./payload.js";
import { cssColor } from "./colormaps.js";
import {
  blend, drawAxes, drawImageData, inputImage, lighten, meanImage, niceTicks, pixelImage, shade,
  axisStyle, sizeVectorCanvas, strokePolyline, themeColor,
} from "./draw.js";
import { controlRow, formatNumber, h, rangeControl, rangeTicks, selectControl, setOptions, traitSync } from "./controls.js";
import { mountExplorer } from "./explorer.js";
import { pixelFigure, probabilityBars } from "./panels.js";

const IMAGE_CSS_SIZE = 144;
const MAP_CSS_SIZE = 400;
const MAP_MARGIN = { left: 40, right: 10, top: 10, bottom: 28 };
const HELP_IMAGE = "Frames invert z + t (z_p − z) in feature space: t = 0 is the input, t = 1 the nearest point on the "
  + "decision boundary (the two classes tie), t = 2 its mirror image. Moving along the boundary keeps the two classes' "
  + "score gap of the across frame. The overlay colors x − frame (red: higher in x, blue: higher in the frame) "
  + "or the first-order Taylor importance.";
const HELP_PLANAR = "Click a point (or use the Point slider) to select it. Its path runs straight across the boundary "
  + "in feature space: solid up to the boundary point ◆ (t = 1), dashed on to the mirror point (t = 2).";
const OVERLAYS = [
  { value: "difference", label: "x − frame (what changes)" },
  { value: "importance", label: "First-order importance" },
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

/** @typedef {import("./explorer.js").Shell} Shell */

/** @type {import("./explorer.js").ViewSpec} */
const BOUNDARY_VIEW = {
  className: "xl-boundary",
  title: "Decision boundary explorer",
  subtitle: () => "invertible classifier · Zhuang et al. 2019",
  busyText: "Computing…",
  help: (common) => (common.meta.kind === "planar" ? HELP_PLANAR : HELP_IMAGE),
  picker: (common) => common.meta.kind !== "planar" && common.n > 1,

  syncs(shell) {
    const { model, state } = shell;
    const at = (/** @type {string} */ name, /** @type {(v: any) => void} */ apply) => traitSync(model, name, (v) => {
      apply(v);
      shell.redraw();
    });
    Object.assign(state, {
      direction: 0, amountIndex: 0, tIndex: 0,
      overlay: String(model.get("overlay") || "difference"), opacity: Number(model.get("opacity") ?? 0.7),
    });
    return {
      t: at("t", (v) => { if (state.t) state.tIndex = nearestIndex(state.t, v); }),
      direction: at("direction", (v) => { state.direction = v; }),
      amount: at("amount", (v) => { if (state.amounts) state.amountIndex = nearestIndex(state.amounts, v); }),
      overlay: at("overlay", (v) => { state.overlay = v; }),
      opacity: at("opacity", (v) => { state.opacity = v; }),
    };
  },

  load(shell, first) {
    const { state, model } = shell;
    const { arrays } = shell.common;
    const [, kCount, aCount, tCount] = arrays.probs.shape; // (N, K, A, T, C)
    Object.assign(state, {
      kCount, aCount, tCount, t: readBlock(arrays.t, []), amounts: readBlock(arrays.amounts, []), regionKey: "",
    });
    if (first) {
      state.direction = Math.min(Math.max(0, model.get("direction") | 0), Math.max(kCount - 1, 0));
      state.amountIndex = nearestIndex(state.amounts, Number(model.get("amount")) || 0);
      state.tIndex = nearestIndex(state.t, Number(model.get("t")) || 0);
    }
  },

  build(shell) {
    const { common, state } = shell;
    const planar = common.meta.kind === "planar";
    const controls = [];
    if (planar && common.n > 1) {
      shell.ui.indexSlider = rangeControl({
        role: "index-slider", label: "Selected point", count: common.n, value: shell.index, signal: shell.signal,
        onInput: (i) => shell.selectIndex(i),
      });
      shell.ui.indexValue = h("output", { className: "xl-value", role: "index-value" });
      controls.push(controlRow("Point", [shell.ui.indexSlider, shell.ui.indexValue]));
    }
    controls.push(buildAcross(shell));
    if (state.kCount > 0 && state.aCount > 1) controls.push(buildAlong(shell));
    if (!planar) controls.push(buildOverlayControls(shell));
    shell.ui.bars = probabilityBars({ names: common.names, title: "Class probabilities of the frame" });
    const main = h("div", { className: "xl-main" }, [planar ? buildMap(shell) : buildImages(shell), shell.ui.bars.node]);
    return { main, controls };
  },

  draw(shell, n) {
    const { common, state, ui, root } = shell;
    const k = state.kCount > 0 ? Math.min(state.direction, state.kCount - 1) : 0;
    const a = state.aCount > 1 ? state.amountIndex : 0;
    const ti = state.tIndex;
    const probs = readBlock(common.arrays.probs, [n, k, a, ti]);
    const source = common.source[n];
    const target = common.target[n];
    if (common.meta.kind === "planar") drawMap(shell, n, k, a, ti, probs);
    else drawImages(shell, n, k, a, ti);
    ui.bars.update(probs, source, target);
    drawControls(shell, n);

    const top = argmax(probs);
    const where = common.meta.kind === "planar" ? "Point" : "Input";
    shell.setStatus(`${where} ${n + 1} of ${common.n} · predicted ${common.names[source]} → target ${common.names[target]}`
      + ` · t = ${formatNumber(state.t[ti])} · frame classified ${common.names[top]} (${Math.round(100 * probs[top])} %)`);
    root.dataset.t = String(state.t[ti]);
    root.dataset.targetProb = String(probs[target]);
    root.dataset.frameClass = String(top);
  },
};

/** @param {Float32Array} values */
function argmax(values) {
  let top = 0;
  for (let c = 1; c < values.length; c++) if (values[c] > values[top]) top = c;
  return top;
}

// ---- layout ---------------------------------------------------------------------------
/** @param {Shell} shell */
function buildImages(shell) {
  const { ui, common } = shell;
  const shape = common.shape;
  const size = IMAGE_CSS_SIZE;
  ui.original = pixelFigure({ caption: "Input x", role: "original-canvas", shape, size });
  ui.frame = pixelFigure({ caption: "Frame", role: "frame-canvas", shape, size });
  ui.overlay = pixelFigure({ caption: "x − frame", role: "overlay-canvas", shape, size });
  ui.clipNote = h("div", { className: "xl-note", role: "clip-note", attrs: { hidden: true } });
  ui.frame.node.appendChild(ui.clipNote);
  ui.legendLow = h("span", { className: "xl-legend-low" });
  ui.legendHigh = h("span", { className: "xl-legend-high" });
  const legend = h("div", { className: "xl-colorbar", role: "overlay-legend" }, [
    h("span", { className: "xl-colorbar-ramp", style: { background: shell.palette.divergingGradient() } }),
    h("div", { className: "xl-colorbar-labels" }, [ui.legendLow, h("span", { text: "0" }), ui.legendHigh]),
  ]);
  ui.overlay.node.appendChild(legend);
  return h("div", { className: "xl-images" }, [ui.original.node, ui.frame.node, ui.overlay.node]);
}

/** @param {Shell} shell */
function buildMap(shell) {
  const { ui, common, palette } = shell;
  ui.map = h("canvas", {
    className: "xl-map", role: "map-canvas",
    attrs: { role: "img", "aria-label": "Decision regions, boundary curves, data points and the selected point's path" },
  });
  ui.mapCtx = sizeVectorCanvas(ui.map, MAP_CSS_SIZE, MAP_CSS_SIZE);
  ui.map.addEventListener("click", (event) => onMapClick(shell, event), { signal: shell.signal });
  const legend = h("div", { className: "xl-map-legend", role: "map-legend" });
  common.names.forEach((name, k) => {
    legend.appendChild(h("span", { className: "xl-legend-item" }, [
      h("span", { className: "xl-swatch", style: { background: cssColor(palette.classColor(k)) } }),
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

/** @param {Shell} shell */
function buildAcross(shell) {
  const { ui, state, syncs } = shell;
  const tMax = state.t[state.t.length - 1];
  ui.tSlider = rangeControl({
    role: "t-slider", label: "Position across the boundary, t", count: state.tCount, value: state.tIndex,
    signal: shell.signal,
    onInput: (i) => { state.tIndex = i; syncs.t.push(state.t[i]); shell.redraw(); },
  });
  ui.tValue = h("output", { className: "xl-value", role: "t-value" });
  /** @type {Array<{ fraction: number, label: string, emphasis?: boolean }>} */
  const ticks = [{ fraction: 0, label: "0 · input" }];
  if (tMax >= 1) ticks.push({ fraction: 1 / tMax, label: "1 · boundary", emphasis: true });
  if (tMax > 1.15) ticks.push({ fraction: 1, label: tMax === 2 ? "2 · mirror" : formatNumber(tMax, 1) });
  const track = h("div", { className: "xl-slider" }, [ui.tSlider, rangeTicks(ticks, "t-ticks")]);
  return controlRow("Across", [track, ui.tValue], "across");
}

/** @param {Shell} shell */
function buildAlong(shell) {
  const { ui, state, syncs } = shell;
  ui.directionSelect = selectControl({
    role: "direction-select", label: "Direction along the boundary", signal: shell.signal,
    onChange: (v) => { state.direction = Number(v); syncs.direction.push(state.direction); shell.redraw(); },
  });
  setOptions(ui.directionSelect, Array.from({ length: state.kCount }, (_, k) => ({
    value: String(k), label: `Direction ${k + 1}` })), String(state.direction));
  ui.amountSlider = rangeControl({
    role: "amount-slider", label: "Position along the boundary, in standard deviations", count: state.aCount,
    value: state.amountIndex, signal: shell.signal,
    onInput: (i) => { state.amountIndex = i; syncs.amount.push(state.amounts[i]); shell.redraw(); },
  });
  ui.amountValue = h("output", { className: "xl-value", role: "amount-value" });
  const lo = state.amounts[0];
  const hi = state.amounts[state.amounts.length - 1];
  const ticks = [
    { fraction: 0, label: `${formatNumber(lo, 1)} σ` },
    { fraction: (0 - lo) / (hi - lo || 1), label: "0", emphasis: true },
    { fraction: 1, label: `+${formatNumber(hi, 1)} σ` },
  ];
  const track = h("div", { className: "xl-slider" }, [ui.amountSlider, rangeTicks(ticks, "amount-ticks")]);
  return controlRow("Along", [ui.directionSelect, track, ui.amountValue], "along");
}

/** @param {Shell} shell */
function buildOverlayControls(shell) {
  const { ui, state, syncs } = shell;
  ui.overlaySelect = selectControl({
    role: "overlay-select", label: "Overlay map", signal: shell.signal,
    onChange: (v) => { state.overlay = v; syncs.overlay.push(v); shell.redraw(); },
  });
  const at = shell.common.meta.importance_at === "projection" ? "x_p" : "x";
  setOptions(ui.overlaySelect, OVERLAYS.map(({ value, label }) => ({
    value, label: value === "importance" ? `${label} (Taylor at ${at})` : label })), state.overlay);
  ui.opacitySlider = rangeControl({
    role: "opacity-slider", label: "Overlay opacity", count: 21, value: Math.round(state.opacity * 20),
    signal: shell.signal,
    onInput: (i) => { state.opacity = i / 20; syncs.opacity.push(state.opacity); shell.redraw(); },
  });
  ui.opacityValue = h("output", { className: "xl-value", role: "opacity-value" });
  return controlRow("Overlay", [ui.overlaySelect, h("span", { className: "xl-inline-label", text: "opacity" }),
    ui.opacitySlider, ui.opacityValue], "overlay");
}

// ---- interaction ----------------------------------------------------------------------
/**
 * @param {Shell} shell
 * @param {MouseEvent} event
 */
function onMapClick(shell, event) {
  const rect = shell.ui.map.getBoundingClientRect();
  const px = (event.clientX - rect.left) * (MAP_CSS_SIZE / rect.width);
  const py = (event.clientY - rect.top) * (MAP_CSS_SIZE / rect.height);
  const { sx, sy } = mapScales(shell.common.meta.bounds);
  const xs = shell.common.arrays.x.data;
  let best = 0;
  let bestDistance = Infinity;
  for (let i = 0; i < shell.common.n; i++) {
    const d = (sx(xs[2 * i]) - px) ** 2 + (sy(xs[2 * i + 1]) - py) ** 2;
    if (d < bestDistance) { bestDistance = d; best = i; }
  }
  shell.selectIndex(best);
}

// ---- drawing --------------------------------------------------------------------------
/**
 * @param {Shell} shell
 * @param {number} n
 * @param {number} k
 * @param {number} a
 * @param {number} ti
 */
function drawImages(shell, n, k, a, ti) {
  const { ui, state, common, palette } = shell;
  const { arrays, shape } = common;
  const [lo, hi] = common.range;
  const x = readBlock(arrays.x, [n]);
  const frame = readBlock(arrays.frames, [n, k, a, ti]);
  const base = inputImage(x, shape, lo, hi);
  drawImageData(ui.original.canvas, base);
  drawImageData(ui.frame.canvas, inputImage(frame, shape, lo, hi));
  let signed;
  let limit;
  if (state.overlay === "importance") {
    signed = readBlock(arrays.importance, [n]);
    limit = valueAt(arrays.importance_limit, [n]);
  } else {
    signed = x.map((v, i) => v - frame[i]);
    limit = valueAt(arrays.difference_limit, [n]);
  }
  const overlay = meanImage(signed, shape, (v) => palette.diverging(v, limit));
  drawImageData(ui.overlay.canvas, blend(lighten(base, 0.55), overlay, state.opacity));
  ui.overlay.label.textContent = state.overlay === "importance"
    ? `Importance · first order misses ${Math.round(100 * valueAt(arrays.taylor_residual, [n]))} % of the score gap`
    : "x − frame";
  ui.frame.label.textContent = `Frame at t = ${formatNumber(state.t[ti])}`;
  // an inverted feature point need not be a valid input: say when the picture is clipped
  const tolerance = arrays.frames.scale / 2; // the payload's resolution
  let outside = 0;
  for (const v of frame) if (v < lo - tolerance || v > hi + tolerance) outside++;
  ui.clipNote.hidden = outside === 0;
  ui.clipNote.textContent = `${Math.round(100 * outside / frame.length)} % of its pixels lie outside `
    + `[${formatNumber(lo)}, ${formatNumber(hi)}]: drawn clipped`;
  shell.root.dataset.frameOutside = String(outside / frame.length);
  ui.legendLow.textContent = `−${formatNumber(limit, 2)}`;
  ui.legendHigh.textContent = `+${formatNumber(limit, 2)}`;
}

/** @param {[number, number, number, number]} bounds */
function mapScales([xmin, xmax, ymin, ymax]) {
  const w = MAP_CSS_SIZE - MAP_MARGIN.left - MAP_MARGIN.right;
  const hgt = MAP_CSS_SIZE - MAP_MARGIN.top - MAP_MARGIN.bottom;
  return {
    w, h: hgt, xmin, xmax, ymin, ymax,
    sx: (/** @type {number} */ v) => MAP_MARGIN.left + ((v - xmin) / (xmax - xmin)) * w,
    sy: (/** @type {number} */ v) => MAP_MARGIN.top + ((ymax - v) / (ymax - ymin)) * hgt,
  };
}

/**
 * The region grid as an image, shaded per class over the theme background.
 * @param {Shell} shell
 * @param {[number, number, number]} background
 */
function regionImage(shell, background) {
  const { state, palette } = shell;
  const key = background.join(",");
  if (state.regionKey === key) return state.regionImage;
  const grid = shell.common.arrays.region_probs; // (R_y, R_x, C), row 0 at ymin
  const [rows, cols, classes] = grid.shape;
  const values = readBlock(grid, []);
  state.regionImage = pixelImage(cols, rows, (i) => {
    const row = rows - 1 - Math.floor(i / cols);
    const base = (row * cols + (i % cols)) * classes;
    let top = 0;
    for (let c = 1; c < classes; c++) if (values[base + c] > values[base + top]) top = c;
    const confidence = (values[base + top] - 1 / classes) / (1 - 1 / classes);
    return shade(background, palette.classColor(top), confidence);
  });
  state.regionKey = key;
  return state.regionImage;
}

/**
 * @param {Shell} shell
 * @param {number} n
 * @param {number} k
 * @param {number} a
 * @param {number} ti
 * @param {Float32Array} probs
 */
function drawMap(shell, n, k, a, ti, probs) {
  const { ui, state, common, palette, root } = shell;
  const { arrays } = common;
  const ctx = ui.mapCtx;
  const background = themeColor(root, "--jp-layout-color1", [255, 255, 255]);
  const ink = themeColor(root, "--jp-ui-font-color1", [33, 33, 33]);
  const style = axisStyle(root);
  const { sx, sy, w, h: hgt, xmin, xmax, ymin, ymax } = mapScales(common.meta.bounds);
  ctx.clearRect(0, 0, MAP_CSS_SIZE, MAP_CSS_SIZE);
  ctx.fillStyle = cssColor(background);
  ctx.fillRect(0, 0, MAP_CSS_SIZE, MAP_CSS_SIZE);
  drawImageData(ui.map, regionImage(shell, background), true, [MAP_MARGIN.left, MAP_MARGIN.top, w, hgt]);

  // axes
  const ticks = (/** @type {number} */ lo, /** @type {number} */ hi) => niceTicks(lo, hi, 5).map(
    (v) => /** @type {[number, string]} */ ([v, formatNumber(v, 1)]));
  drawAxes(ctx, { left: MAP_MARGIN.left, top: MAP_MARGIN.top, width: w, height: hgt }, ticks(xmin, xmax),
    ticks(ymin, ymax), sx, sy, style);

  ctx.save();
  ctx.beginPath();
  ctx.rect(MAP_MARGIN.left, MAP_MARGIN.top, w, hgt);
  ctx.clip();

  // boundary curves (offsets delimit each polyline)
  const points = arrays.curve_points.data;
  const offsets = arrays.curve_offsets.data;
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
  if (arrays.reference) {
    const ref = arrays.reference.data;
    ctx.fillStyle = cssColor(ink, 0.22);
    for (let i = 0; i < ref.length; i += 2) {
      ctx.beginPath();
      ctx.arc(sx(ref[i]), sy(ref[i + 1]), 1.8, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  const xs = arrays.x.data;
  ctx.lineWidth = 0.8;
  ctx.strokeStyle = cssColor(background, 0.9);
  for (let i = 0; i < common.n; i++) {
    ctx.fillStyle = cssColor(palette.classColor(common.source[i]));
    ctx.beginPath();
    ctx.arc(sx(xs[2 * i]), sy(xs[2 * i + 1]), 3.2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }

  // the selected point's path: solid up to the boundary, dashed past it
  const path = readBlock(arrays.frames, [n, k, a]); // (T, 2)
  const onBoundary = nearestIndex(state.t, 1);
  /** @type {Array<[number, number]>} */
  const before = [];
  /** @type {Array<[number, number]>} */
  const after = [];
  for (let i = 0; i < state.tCount; i++) {
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
  const center = state.amounts.length > 1 ? nearestIndex(state.amounts, 0) : 0;
  const proj = a === center ? readBlock(arrays.x_proj, [n]) : path.slice(2 * onBoundary, 2 * onBoundary + 2);
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
  const cx = sx(path[2 * ti]);
  const cy = sy(path[2 * ti + 1]);
  ctx.beginPath();
  ctx.arc(cx, cy, 6.5, 0, 2 * Math.PI);
  ctx.fillStyle = cssColor(palette.classColor(argmax(probs)));
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
 * @param {Shell} shell
 * @param {number} n
 */
function drawControls(shell, n) {
  const { ui, state, common } = shell;
  ui.tSlider.value = String(state.tIndex);
  ui.tValue.textContent = `t = ${formatNumber(state.t[state.tIndex])}`;
  ui.tSlider.setAttribute("aria-valuetext", `t = ${formatNumber(state.t[state.tIndex])}`);
  if (ui.amountSlider) {
    const amount = state.amounts[state.amountIndex];
    ui.amountSlider.value = String(state.amountIndex);
    ui.amountValue.textContent = `${amount > 0 ? "+" : ""}${formatNumber(amount, 1)} σ`;
    ui.amountSlider.setAttribute("aria-valuetext", `${formatNumber(amount, 1)} standard deviations`);
    ui.directionSelect.value = String(state.direction);
  }
  if (ui.indexSlider) {
    ui.indexSlider.value = String(n);
    ui.indexValue.textContent = `${n + 1} / ${common.n}`;
  }
  if (ui.overlaySelect) {
    ui.overlaySelect.value = state.overlay;
    ui.opacitySlider.value = String(Math.round(state.opacity * 20));
    ui.opacityValue.textContent = `${Math.round(state.opacity * 100)} %`;
  }
}

export default { render: (/** @type {{ model: any, el: HTMLElement }} */ context) => mountExplorer(context, BOUNDARY_VIEW) };
