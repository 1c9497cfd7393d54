// @ts-check
// crosslens.AttributionExplorer, browser half. Compares attribution methods on pairs of a
// real image and its counterfactual by their DAC curves (Eckstein et al. 2021, arXiv 2109.13412).
//
// Everything drawn comes from ONE binary payload (trait `_payload`), for both directions
// ("dac", "quac"): per method and pair the attribution map `<d>_attributions`, the mask levels
// `<d>_levels` (mask k, at threshold -1 + 0.01 k, holds the pixels whose level exceeds k), and
// per threshold the mask size `<d>_size` and restored score `<d>_scores`, each pair's area
// `<d>_auc` and best mask `<d>_best`. The threshold slider, the method grid and the direction
// toggle redraw from it in the next animation frame; only the shell's target select (made
// pairs) goes back to the kernel.
import { readBlock } from "./payload.js";
import { axisStyle, blend, drawAxes, drawImageData, inputImage, lighten, meanImage, sizeVectorCanvas, strokePolyline } from "./draw.js";
import { controlRow, formatNumber, guardKeys, h, rangeControl, selectControl, setOptions, traitSync } from "./controls.js";
import { mountExplorer } from "./explorer.js";
import { pixelFigure } from "./panels.js";

const CARD_SIZE = 84;
const DETAIL_SIZE = 104;
const CURVE_WIDTH = 700;
const CURVE_HEIGHT = 220;
const CURVE_MARGIN = { left: 44, right: 16, top: 10, bottom: 30 };
const OVERLAY_ALPHA = 0.75;
const DIRECTIONS = [
  { value: "dac", label: "DAC: real pixels into the counterfactual" },
  { value: "quac", label: "QuAC: counterfactual pixels into the real image" },
];
const HELP = "Each map is thresholded at 201 levels (−1 … 1, maps divided by their max |a|). The mask pastes pixels "
  + "of one image into the other (DAC direction: real pixels into the counterfactual) and the classifier's score of "
  + "the hybrid says how much of its decision the mask restores. A good method restores a lot with a small mask: "
  + "its DAC curve (score against mask size) rises steeply and its area (AUC) is large. D-methods use the "
  + "counterfactual as the baseline; dashed curves are the standard methods.";

/** @typedef {import("./explorer.js").Shell} Shell */

/**
 * The separable Gaussian the kernel blurs masks with (crosslens.kernel_side._images.gaussian_blur):
 * radius ceil(3 sigma), edges replicated; width first, then height.
 * @param {Float32Array} values height * width, changed in place
 * @param {number} height
 * @param {number} width
 * @param {number} sigma
 */
function gaussianBlur(values, height, width, sigma) {
  if (!(sigma > 0)) return values;
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const weights = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let o = -radius; o <= radius; o++) total += (weights[o + radius] = Math.exp(-0.5 * (o / sigma) ** 2));
  for (let i = 0; i < weights.length; i++) weights[i] /= total;
  const pass = (/** @type {boolean} */ horizontal) => {
    const out = new Float32Array(values.length);
    const [lines, length] = horizontal ? [height, width] : [width, height];
    if (length < 2) return;
    for (let line = 0; line < lines; line++) {
      for (let i = 0; i < length; i++) {
        let sum = 0;
        for (let o = -radius; o <= radius; o++) {
          const j = Math.min(Math.max(i + o, 0), length - 1);
          sum += weights[o + radius] * values[horizontal ? line * width + j : j * width + line];
        }
        out[horizontal ? line * width + i : i * width + line] = sum;
      }
    }
    values.set(out);
  };
  pass(true);
  pass(false);
  return values;
}

/** @type {import("./explorer.js").ViewSpec} */
const ATTRIBUTION_VIEW = {
  className: "xl-attribution",
  title: "Attribution explorer",
  subtitle: () => "discriminative attribution from counterfactuals · Eckstein et al. 2021",
  busyText: "Making the counterfactual…",
  help: () => HELP,
  picker: (common) => common.n > 1,

  syncs(shell) {
    const { model, state } = shell;
    Object.assign(state, {
      method: String(model.get("method")), k: thresholdIndex(model.get("threshold")),
      direction: String(model.get("direction") || "dac"),
    });
    return {
      method: traitSync(model, "method", (v) => { state.method = v; shell.redraw(); }),
      threshold: traitSync(model, "threshold", (v) => { state.k = thresholdIndex(v); shell.redraw(); }),
      direction: traitSync(model, "direction", (v) => { state.direction = v; shell.redraw(); }),
    };
  },

  load(shell) {
    const { state, common } = shell;
    const { meta, arrays } = common;
    state.methods = meta.methods;
    state.count = meta.thresholds;
    /** @type {Record<string, any>} */
    const directions = {};
    for (const { value: d } of DIRECTIONS) {
      directions[d] = {
        attributions: arrays[`${d}_attributions`], levels: arrays[`${d}_levels`], size: arrays[`${d}_size`],
        scores: arrays[`${d}_scores`], auc: arrays[`${d}_auc`], best: arrays[`${d}_best`],
      };
    }
    state.directions = directions;
    state.version = (state.version || 0) + 1;
    if (!state.methods.includes(state.method)) state.method = state.methods[0];
  },

  build(shell) {
    const { ui, common, state, signal } = shell;
    ui.grid = h("div", { className: "xl-dac-grid", role: "method-grid", attrs: { "aria-label": "Methods" } });
    ui.cards = {};
    for (const m of state.methods) ui.grid.appendChild(buildCard(shell, m));
    const figure = (/** @type {string} */ caption, /** @type {string} */ role) => pixelFigure({
      caption, role, shape: common.shape, size: DETAIL_SIZE,
    });
    ui.real = figure("Real image x", "real-canvas");
    ui.counterfactual = figure("Counterfactual x′", "counterfactual-canvas");
    ui.mask = figure("Mask", "mask-canvas");
    ui.hybrid = figure("Hybrid", "hybrid-canvas");
    ui.score = h("output", { className: "xl-dac-score", role: "score", attrs: { "aria-live": "polite" } });
    ui.flag = h("div", { className: "xl-note", role: "confidence-flag", attrs: { hidden: true } });
    const detail = h("div", { className: "xl-dac-detail", role: "detail" }, [
      h("div", { className: "xl-images" }, [ui.real.node, ui.counterfactual.node, ui.mask.node, ui.hybrid.node]),
      ui.score, ui.flag,
    ]);
    const main = h("div", {}, [h("div", { className: "xl-main" }, [ui.grid, detail]), buildCurve(shell)]);

    ui.slider = rangeControl({
      role: "threshold-slider", label: "Threshold", count: state.count, value: state.k, signal,
      onInput: (k) => setThreshold(shell, k),
    });
    ui.sliderValue = h("output", { className: "xl-value", role: "threshold-value" });
    ui.best = h("button", {
      className: "xl-button", role: "best-button", text: "Best mask",
      attrs: { type: "button", "aria-label": "Move to the best single mask of the selected method" },
    });
    guardKeys(ui.best, signal);
    ui.best.addEventListener("click", () => {
      const { directions, direction, method } = shell.state;
      setThreshold(shell, directions[direction].best.data[cell(shell, method, shell.index)]);
    }, { signal });
    ui.direction = selectControl({
      role: "direction-select", label: "Direction", signal,
      onChange: (v) => { state.direction = v; shell.syncs.direction.push(v); shell.redraw(); },
    });
    setOptions(ui.direction, DIRECTIONS, state.direction);
    return {
      main,
      controls: [
        controlRow("Threshold", [h("div", { className: "xl-slider" }, [ui.slider]), ui.sliderValue, ui.best], "threshold"),
        controlRow("Direction", [ui.direction, ui.form = h("span", { className: "xl-hint", role: "form-hint" })],
          "direction"),
      ],
    };
  },

  draw(shell, n) {
    const { common, ui, root, state } = shell;
    const data = state.directions[state.direction];
    const m = cell(shell, state.method, n);
    const k = Math.min(state.k, state.count - 1);
    const cardsKey = `${state.version}|${n}|${state.direction}`; // the maps change only with these
    for (const method of state.methods) drawCard(shell, method, n, data, cardsKey !== state.cardsKey);
    state.cardsKey = cardsKey;
    drawDetail(shell, n, data, m, k);
    drawCurve(shell, n, data, k);

    const source = common.source[n];
    const target = common.target[n];
    const scored = common.names[state.direction === "dac" ? source : target];
    const score = data.scores.data[m * state.count + k];
    const size = data.size.data[m * state.count + k];
    const label = common.meta.labels[state.method];
    ui.sliderValue.textContent = `${formatNumber(threshold(k))}`;
    ui.slider.value = String(k);
    ui.slider.setAttribute("aria-valuetext", `threshold ${formatNumber(threshold(k))}, mask ${Math.round(100 * size)} % of pixels`);
    ui.direction.value = state.direction;
    ui.form.textContent = `D-methods in the ${common.meta.forms[state.direction]} form`;
    ui.score.textContent = `${label}: a mask of ${Math.round(100 * size)} % of the pixels restores Δp(${scored}) = `
      + `${formatNumber(score)} · AUC ${formatNumber(data.auc.data[m], 3)}`;
    shell.setStatus(`Pair ${n + 1} of ${common.n} · x predicted ${common.names[source]} → x′ classified `
      + `${common.names[target]} · ${label} at threshold ${formatNumber(threshold(k))}`);
    Object.assign(root.dataset, {
      method: state.method, direction: state.direction, threshold: String(threshold(k)), score: String(score),
      maskSize: String(size),
    });
  },
};

/** @param {any} v */
function thresholdIndex(v) {
  return Math.round((Number(v ?? 0) + 1) * 100);
}

/** @param {number} k */
function threshold(k) {
  return -1 + 0.01 * k;
}

/**
 * The flat index of (method, pair) in the (M, N, ...) arrays.
 * @param {Shell} shell
 * @param {string} method
 * @param {number} n
 */
function cell(shell, method, n) {
  return shell.state.methods.indexOf(method) * shell.common.n + n;
}

/**
 * @param {Shell} shell
 * @param {number} k
 */
function setThreshold(shell, k) {
  shell.state.k = k;
  shell.syncs.threshold.push(Math.round(100 * threshold(k)) / 100);
  shell.redraw();
}

/**
 * @param {Shell} shell
 * @param {string} method
 */
function selectMethod(shell, method) {
  shell.state.method = method;
  shell.syncs.method.push(method);
  shell.redraw();
}

// ---- layout ---------------------------------------------------------------------------
/**
 * A method's card: its map over the real image, its name and area; a button that selects it.
 * @param {Shell} shell
 * @param {string} method
 */
function buildCard(shell, method) {
  const { common, signal } = shell;
  const label = common.meta.labels[method];
  const canvas = pixelFigure({ caption: label, role: `${method}-map`, shape: common.shape, size: CARD_SIZE });
  const auc = h("span", { className: "xl-dac-auc", role: `${method}-auc` });
  canvas.label.replaceChildren(h("span", { className: "xl-dac-name", text: label }), auc);
  const button = h("button", {
    className: "xl-dac-card", role: "method-option",
    attrs: { type: "button", "data-method": method, "aria-label": `${label}: select this method` },
    style: { "--xl-dac-color": common.meta.colors[method] },
  }, [canvas.node]);
  guardKeys(button, signal);
  button.addEventListener("click", () => selectMethod(shell, method), { signal });
  shell.ui.cards[method] = { button, canvas: canvas.canvas, auc };
  return button;
}

/** @param {Shell} shell */
function buildCurve(shell) {
  const { ui, common } = shell;
  ui.curve = h("canvas", {
    className: "xl-curve", role: "dac-curves",
    attrs: { role: "img", "aria-label": "DAC curves of every method: restored score against mask size" },
  });
  ui.curveCtx = sizeVectorCanvas(ui.curve, CURVE_WIDTH, CURVE_HEIGHT);
  ui.curveTitle = h("div", { className: "xl-panel-title" });
  const legend = h("div", { className: "xl-map-legend xl-dac-legend", role: "curve-legend" });
  for (const method of common.meta.methods) {
    const standard = Object.values(common.meta.standard_of).includes(method);
    legend.appendChild(h("span", { className: "xl-legend-item" }, [
      h("span", {
        className: standard ? "xl-swatch-path" : "xl-swatch-line",
        style: { "border-top-color": common.meta.colors[method] },
      }),
      h("span", { text: common.meta.labels[method] }),
    ]));
  }
  return h("figure", { className: "xl-figure xl-curve-figure" }, [ui.curveTitle, ui.curve, legend]);
}

// ---- drawing --------------------------------------------------------------------------
/**
 * A method's card: its map and area are redrawn when `maps` (a new pair, direction or payload),
 * its pressed state always.
 * @param {Shell} shell
 * @param {string} method
 * @param {number} n
 * @param {any} data the selected direction's arrays
 * @param {boolean} maps
 */
function drawCard(shell, method, n, data, maps) {
  const { common, ui, palette, state } = shell;
  const card = ui.cards[method];
  card.button.setAttribute("aria-pressed", String(method === state.method));
  if (!maps) return;
  const c = cell(shell, method, n);
  const [lo, hi] = common.range;
  const base = lighten(inputImage(readBlock(common.arrays.x, [n]), common.shape, lo, hi), 0.45);
  const map = meanImage(readBlock(data.attributions, [state.methods.indexOf(method), n]), common.shape,
    (v) => palette.diverging(v, 1));
  drawImageData(card.canvas, blend(base, map, OVERLAY_ALPHA));
  card.auc.textContent = `AUC ${formatNumber(data.auc.data[c], 2)}`;
  card.button.setAttribute("aria-label", `${common.meta.labels[method]}, AUC ${formatNumber(data.auc.data[c], 2)}: `
    + "select this method");
}

/**
 * The pair, the selected method's mask at threshold k and the hybrid it makes.
 * @param {Shell} shell
 * @param {number} n
 * @param {any} data
 * @param {number} m flat (method, pair) index
 * @param {number} k
 */
function drawDetail(shell, n, data, m, k) {
  const { common, ui, state } = shell;
  const { channels, height, width } = common.shape;
  const [lo, hi] = common.range;
  const real = readBlock(common.arrays.x, [n]);
  const counterfactual = readBlock(common.arrays.x_cf, [n]);
  drawImageData(ui.real.canvas, inputImage(real, common.shape, lo, hi));
  drawImageData(ui.counterfactual.canvas, inputImage(counterfactual, common.shape, lo, hi));
  const source = common.source[n];
  const target = common.target[n];
  const pSource = common.arrays.p_source.data[n];
  const pTarget = common.arrays.p_target.data[n];
  ui.real.label.textContent = `x: ${common.names[source]} (p ${formatNumber(pSource)})`;
  ui.counterfactual.label.textContent = `x′: ${common.names[target]} (p ${formatNumber(pTarget)})`;
  const low = Math.min(pSource, pTarget) <= common.meta.min_confidence;
  ui.flag.hidden = !low;
  ui.flag.textContent = low ? `Below the authors' filter (both p > ${common.meta.min_confidence}): a weak pair` : "";

  const levels = readBlock(data.levels, [state.methods.indexOf(state.method), n]);
  const plane = height * width;
  const mask = new Float32Array(plane);
  for (let i = 0; i < plane; i++) mask[i] = levels[i] > k ? 1 : 0;
  drawImageData(ui.mask.canvas, inputImage(mask, { channels: 1, height, width }, 0, 1));
  const soft = gaussianBlur(Float32Array.from(mask), height, width, common.meta.blur);
  const [pasted, canvas] = state.direction === "dac" ? [real, counterfactual] : [counterfactual, real];
  const hybrid = new Float32Array(pasted.length);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      const j = c * plane + i;
      hybrid[j] = soft[i] * pasted[j] + (1 - soft[i]) * canvas[j];
    }
  }
  drawImageData(ui.hybrid.canvas, inputImage(hybrid, common.shape, lo, hi));
  const size = data.size.data[m * state.count + k];
  ui.mask.label.textContent = `Mask: ${Math.round(100 * size)} % of the pixels`;
  ui.hybrid.label.textContent = state.direction === "dac" ? "Hybrid: mask from x, rest from x′"
    : "Hybrid: mask from x′, rest from x";
}

/**
 * Every method's DAC curve for pair n, the selected one bold, the threshold k marked on each.
 * @param {Shell} shell
 * @param {number} n
 * @param {any} data
 * @param {number} k
 */
function drawCurve(shell, n, data, k) {
  const { ui, common, state, root } = shell;
  const ctx = ui.curveCtx;
  const box = {
    left: CURVE_MARGIN.left, top: CURVE_MARGIN.top, width: CURVE_WIDTH - CURVE_MARGIN.left - CURVE_MARGIN.right,
    height: CURVE_HEIGHT - CURVE_MARGIN.top - CURVE_MARGIN.bottom,
  };
  // the score axis spans every curve of this pair (scores may dip below 0)
  let low = 0;
  let high = 0.05;
  for (let i = 0; i < state.methods.length; i++) {
    const scores = readBlock(data.scores, [i, n]);
    for (const v of scores) { low = Math.min(low, v); high = Math.max(high, v); }
  }
  const sx = (/** @type {number} */ v) => box.left + v * box.width;
  const sy = (/** @type {number} */ v) => box.top + (1 - (v - low) / (high - low)) * box.height;
  const style = axisStyle(root);
  ctx.clearRect(0, 0, CURVE_WIDTH, CURVE_HEIGHT);
  const xTicks = [0, 0.25, 0.5, 0.75, 1].map((v) => /** @type {[number, string]} */ ([v, `${Math.round(100 * v)} %`]));
  const yTicks = [low, 0, high].filter((v, i, all) => all.indexOf(v) === i)
    .map((v) => /** @type {[number, string]} */ ([v, formatNumber(v, 2)]));
  drawAxes(ctx, box, xTicks, yTicks, sx, sy, style);
  const standard = Object.values(common.meta.standard_of);
  const order = state.methods.filter((/** @type {string} */ method) => method !== state.method).concat([state.method]);
  for (const method of order) {
    const i = state.methods.indexOf(method);
    const sizes = readBlock(data.size, [i, n]);
    const scores = readBlock(data.scores, [i, n]);
    /** @type {Array<[number, number]>} */
    const points = [[sx(0), sy(0)]];
    for (let t = state.count - 1; t >= 0; t--) points.push([sx(sizes[t]), sy(scores[t])]);
    points.push([sx(1), sy(scores[0])]);
    const selected = method === state.method;
    ctx.strokeStyle = common.meta.colors[method];
    ctx.lineWidth = selected ? 3 : 1.5;
    ctx.setLineDash(standard.includes(method) ? [6, 4] : []);
    strokePolyline(ctx, points);
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(sx(sizes[k]), sy(scores[k]), selected ? 5 : 3.5, 0, 2 * Math.PI);
    ctx.fillStyle = common.meta.colors[method];
    ctx.fill();
    if (selected) {
      ctx.strokeStyle = style.ink;
      ctx.lineWidth = 1.2;
      ctx.stroke();
    }
  }
  const scored = common.names[state.direction === "dac" ? common.source[n] : common.target[n]];
  ui.curveTitle.textContent = `DAC curves: restored Δp(${scored}) against mask size, threshold `
    + `${formatNumber(threshold(k))} marked`;
}

export default { render: (/** @type {{ model: any, el: HTMLElement }} */ context) => mountExplorer(context, ATTRIBUTION_VIEW) };
