// @ts-check
// crosslens.AttributeBrowser, browser half. Browses the attributes a FLINT model explains
// itself with (Parekh et al. 2021, arXiv 2010.09345).
//
// Everything drawn comes from ONE binary payload (trait `_payload`): for the gallery's inputs
// the interpreter's probabilities `g_probs` (N, C), f's predictions `f_predicted` and the local
// relevance `relevance` (N, J); for the reference data the class x attribute table `table`
// (C, J), each attribute's maximum activating samples `top` (J, k) and per class
// `top_by_class` (C, J, k), indices into `samples` (-1: none); each attribute's picture
// `pictures` (J, *input_shape), or (J, R, R) heat maps over `meta.bounds` for 2-feature models
// (with the `reference` points). tau, the attribute and the class filter never need the kernel.
import { readBlock } from "./payload.js";
import { cssColor } from "./colormaps.js";
import { drawImageData, inputImage, pixelImage, sizePixelCanvas, sizeVectorCanvas, themeColor } from "./draw.js";
import { controlRow, formatNumber, guardKeys, h, rangeControl, traitSync } from "./controls.js";
import { mountExplorer } from "./explorer.js";
import { pixelFigure } from "./panels.js";

const IMAGE_SIZE = 120;
const SAMPLE_SIZE = 64;
const PLANE_SIZE = 200;
const TAUS = Array.from({ length: 40 }, (_, i) => Math.round((1.1 + 0.1 * i) * 100) / 100); // 1.1 .. 5.0
const HELP = "FLINT learns, with the classifier f, an interpreter g that predicts from a few attributes φ of f's "
  + "hidden layers. The bars rank the selected input's attributes by local relevance (φ_j times the weight of g's "
  + "predicted class, over the largest); those above 1/τ explain the prediction. The table shows each attribute's "
  + "mean relevance per class: choose a cell to select its attribute and show only that class. An attribute is "
  + "pictured by the inputs that activate it most and by an input enhanced to excite it.";

/** @typedef {import("./explorer.js").Shell} Shell */

/** @type {import("./explorer.js").ViewSpec} */
const ATTRIBUTE_VIEW = {
  className: "xl-attribute",
  title: "Attribute browser",
  subtitle: (meta) => `FLINT${meta.post_hoc ? " (post-hoc interpreter)" : ""} · Parekh et al. 2021`,
  busyText: "Interpreting…",
  help: () => HELP,
  picker: (common) => common.meta.kind !== "planar" && common.n > 1,

  syncs(shell) {
    const { model, state } = shell;
    Object.assign(state, {
      tau: Number(model.get("tau")), attribute: Number(model.get("attribute")), classFilter: model.get("class_filter"),
    });
    return {
      tau: traitSync(model, "tau", (v) => { state.tau = v; shell.redraw(); }),
      attribute: traitSync(model, "attribute", (v) => { state.attribute = v; shell.redraw(); }),
      class_filter: traitSync(model, "class_filter", (v) => { state.classFilter = v; shell.redraw(); }),
    };
  },

  load(shell) {
    const { state, common } = shell;
    state.count = common.meta.num_attributes;
    state.classes = common.names.length;
  },

  build(shell) {
    const { ui, common, state, signal } = shell;
    const planar = common.meta.kind === "planar";
    ui.input = planar ? null : pixelFigure({ caption: "Input", role: "input-canvas", shape: common.shape, size: IMAGE_SIZE });
    ui.prediction = h("div", { className: "xl-status", role: "prediction" });
    ui.bars = h("ol", { className: "xl-ax-bars", role: "attribute-bars", attrs: { "aria-label": "Attributes by local relevance" } });
    ui.rows = [];
    for (let j = 0; j < state.count; j++) ui.bars.appendChild(buildBar(shell));
    const local = h("section", { className: "xl-fl-local", attrs: { "aria-label": "This input" } }, [
      ui.input ? ui.input.node : null, ui.prediction,
      h("div", { className: "xl-panel-title", text: "Local relevance of each attribute" }), ui.bars,
    ]);
    ui.table = buildTable(shell);
    ui.samples = h("div", { className: "xl-images", role: "top-samples" });
    ui.sampleCanvases = [];
    ui.pictureTitle = h("div", { className: "xl-panel-title" });
    ui.picture = h("canvas", { className: planar ? "xl-map" : "xl-pixels", role: "attribute-picture",
      attrs: { role: "img", "aria-label": "The selected attribute pictured" } });
    if (planar) ui.planeCtx = sizeVectorCanvas(ui.picture, PLANE_SIZE, PLANE_SIZE);
    else sizePixelCanvas(ui.picture, common.shape.width, common.shape.height, IMAGE_SIZE);
    const attribute = h("section", { className: "xl-fl-attribute", attrs: { "aria-label": "The selected attribute" } }, [
      ui.pictureTitle, ui.picture,
      planar ? null : h("div", { className: "xl-panel-title", text: "Inputs that activate it most" }), ui.samples,
    ]);
    const main = h("div", {}, [h("div", { className: "xl-main" }, [local, attribute]), ui.table.node]);

    ui.tau = rangeControl({
      role: "tau-slider", label: "Relevance threshold tau", count: TAUS.length, signal,
      onInput: (i) => { state.tau = TAUS[i]; shell.syncs.tau.push(state.tau); shell.redraw(); },
    });
    ui.tauValue = h("output", { className: "xl-value", role: "tau-value" });
    if (planar && common.n > 1) { // no gallery of pictures: a slider over the points
      ui.point = rangeControl({ role: "index-slider", label: "Selected point", count: common.n, signal,
        onInput: (i) => shell.selectIndex(i) });
    }
    ui.clear = h("button", { className: "xl-button", role: "clear-filter", text: "All classes",
      attrs: { type: "button", "aria-label": "Show every class again" } });
    guardKeys(ui.clear, signal);
    ui.clear.addEventListener("click", () => setFilter(shell, null), { signal });
    return {
      main,
      controls: [
        ...(ui.point ? [controlRow("Point", [h("div", { className: "xl-slider" }, [ui.point])], "point")] : []),
        controlRow("τ", [h("div", { className: "xl-slider" }, [ui.tau]), ui.tauValue], "tau"),
        controlRow("Class", [ui.filterText = h("span", { className: "xl-hint", role: "filter-text" }), ui.clear], "filter")],
    };
  },

  draw(shell, n) {
    const { common, ui, root, state } = shell;
    const relevance = readBlock(common.arrays.relevance, [n]);
    const probs = readBlock(common.arrays.g_probs, [n]);
    const predicted = common.source[n];
    const byF = common.arrays.f_predicted.data[n];
    if (ui.input) drawImageData(ui.input.canvas, inputImage(readBlock(common.arrays.x, [n]), common.shape, common.range[0], common.range[1]));
    ui.prediction.textContent = `g predicts ${common.names[predicted]} (p ${formatNumber(probs[predicted])}); `
      + `f predicts ${common.names[byF]}${byF === predicted ? "" : " (they disagree)"}`;
    const relevant = drawBars(shell, relevance);
    drawTable(shell);
    drawAttribute(shell);
    drawGallery(shell);
    const t = TAUS.reduce((best, v, i) => (Math.abs(v - state.tau) < Math.abs(TAUS[best] - state.tau) ? i : best), 0);
    if (ui.point) ui.point.value = String(n);
    ui.tau.value = String(t);
    ui.tau.setAttribute("aria-valuetext", `tau ${formatNumber(state.tau, 1)}: relevant above ${formatNumber(1 / state.tau)}`);
    ui.tauValue.textContent = `${formatNumber(state.tau, 1)} (r > ${formatNumber(1 / state.tau)})`;
    ui.filterText.textContent = state.classFilter === null || state.classFilter === undefined ? "every class"
      : `only ${common.names[state.classFilter]}`;
    ui.clear.disabled = state.classFilter === null || state.classFilter === undefined;
    shell.setStatus(`Input ${n + 1} of ${common.n} · g predicts ${common.names[predicted]} · ${relevant.length} relevant `
      + `attribute${relevant.length === 1 ? "" : "s"} at τ ${formatNumber(state.tau, 1)} · attribute φ${state.attribute} selected`);
    Object.assign(root.dataset, {
      relevant: relevant.join(","), attribute: String(state.attribute),
      classFilter: state.classFilter === null || state.classFilter === undefined ? "" : String(state.classFilter),
    });
  },
};

/**
 * @param {Shell} shell
 * @param {number} j
 */
function selectAttribute(shell, j) {
  shell.state.attribute = j;
  shell.syncs.attribute.push(j);
  shell.redraw();
}

/**
 * @param {Shell} shell
 * @param {number | null} c
 */
function setFilter(shell, c) {
  shell.state.classFilter = c;
  shell.syncs.class_filter.push(c);
  const { common, index } = shell;
  if (c !== null && common.source[index] !== c) { // the selected input leaves the gallery: take its class's first
    const first = Array.from(common.source).indexOf(c);
    if (first >= 0) shell.selectIndex(first);
  }
  shell.redraw();
}

/** @param {Shell} shell */
function buildBar(shell) {
  const fill = h("span", { className: "xl-prob-fill" });
  const button = h("button", { className: "xl-prob xl-ax-bar", role: "attribute-bar", attrs: { type: "button" } }, [
    h("span", { className: "xl-prob-name" }), h("span", { className: "xl-prob-track" }, [fill]), h("span", { className: "xl-prob-value" }),
  ]);
  guardKeys(button, shell.signal);
  button.addEventListener("click", () => selectAttribute(shell, Number(button.dataset.attribute)), { signal: shell.signal });
  shell.ui.rows.push(button);
  return h("li", {}, [button]);
}

/**
 * The attributes ranked by relevance; returns the relevant ones (r > 1/tau), best first.
 * @param {Shell} shell
 * @param {Float32Array} relevance
 */
function drawBars(shell, relevance) {
  const { ui, state } = shell;
  const order = Array.from(relevance.keys()).sort((a, b) => relevance[b] - relevance[a] || a - b);
  const relevant = order.filter((j) => relevance[j] > 1 / state.tau);
  order.forEach((j, i) => {
    const button = ui.rows[i];
    const [name, track, value] = /** @type {HTMLElement[]} */ (Array.from(button.children));
    const r = relevance[j];
    button.dataset.attribute = String(j);
    button.classList.toggle("xl-is-target", r > 1 / state.tau);
    button.classList.toggle("xl-ax-hover", j === state.attribute);
    button.setAttribute("aria-pressed", String(j === state.attribute));
    button.setAttribute("aria-label", `Attribute ${j}: relevance ${formatNumber(r)}${r > 1 / state.tau ? ", relevant" : ""}`);
    name.textContent = `φ${j}`;
    /** @type {HTMLElement} */ (track.firstChild).style.width = `${(100 * Math.max(0, r)).toFixed(1)}%`;
    value.textContent = formatNumber(r);
  });
  return relevant;
}

/**
 * The class x attribute table as a grid of buttons (keyboard operable), coloured by r_{j,c}.
 * @param {Shell} shell
 */
function buildTable(shell) {
  const { common, state, signal } = shell;
  const table = h("table", { className: "xl-fl-table", role: "relevance-table" });
  const head = h("tr", {}, [h("th", { text: "" })]);
  for (let j = 0; j < state.count; j++) head.appendChild(h("th", { text: `φ${j}`, attrs: { scope: "col" } }));
  table.appendChild(h("thead", {}, [head]));
  const body = h("tbody");
  /** @type {HTMLButtonElement[][]} */
  const cells = [];
  for (let c = 0; c < state.classes; c++) {
    const row = h("tr", {}, [h("th", { text: common.names[c], attrs: { scope: "row" } })]);
    cells.push([]);
    for (let j = 0; j < state.count; j++) {
      const button = h("button", { className: "xl-fl-cell", role: "relevance-cell",
        attrs: { type: "button", "data-class": c, "data-attribute": j } });
      guardKeys(button, signal);
      button.addEventListener("click", () => {
        state.attribute = j;
        shell.syncs.attribute.push(j);
        setFilter(shell, c);
      }, { signal });
      cells[c].push(button);
      row.appendChild(h("td", {}, [button]));
    }
    body.appendChild(row);
  }
  table.appendChild(body);
  const node = h("figure", { className: "xl-figure xl-curve-figure" }, [
    h("div", { className: "xl-panel-title", text: "Global relevance r(j, c): each attribute's mean relevance per class" }), table]);
  return { node, cells };
}

/** @param {Shell} shell */
function drawTable(shell) {
  const { common, ui, state, palette } = shell;
  const table = common.arrays.table.data;
  let limit = 1e-9;
  for (const v of table) limit = Math.max(limit, Math.abs(v));
  ui.table.cells.forEach((row, c) => row.forEach((button, j) => {
    const r = table[c * state.count + j];
    button.style.background = cssColor(palette.diverging(r, limit));
    button.textContent = r > common.meta.relevant_class ? "•" : "";
    button.setAttribute("aria-label", `Attribute ${j}, class ${common.names[c]}: relevance ${formatNumber(r)}`);
    button.setAttribute("aria-pressed", String(j === state.attribute && c === state.classFilter));
    button.classList.toggle("xl-fl-selected", j === state.attribute);
  }));
}

/**
 * The selected attribute: its picture (or heat map over the plane) and its top samples.
 * @param {Shell} shell
 */
function drawAttribute(shell) {
  const { common, ui, state, root } = shell;
  const j = state.attribute;
  const filter = state.classFilter;
  const served = [];
  for (let c = 0; c < state.classes; c++) if (common.arrays.table.data[c * state.count + j] > common.meta.relevant_class) served.push(common.names[c]);
  ui.pictureTitle.textContent = `Attribute φ${j}${served.length ? `: serves ${served.join(", ")}` : ""}`;
  const picture = readBlock(common.arrays.pictures, [j]);
  const top = filter === null || filter === undefined ? readBlock(common.arrays.top, [j]) : readBlock(common.arrays.top_by_class, [filter, j]);
  if (common.meta.kind === "planar") {
    drawPlane(shell, picture, top);
    return;
  }
  drawImageData(ui.picture, inputImage(picture, common.shape, common.range[0], common.range[1]));
  const shown = Array.from(top).filter((i) => i >= 0);
  while (ui.sampleCanvases.length < shown.length) {
    const canvas = h("canvas", { className: "xl-pixels", role: "top-sample", attrs: { role: "img" } });
    sizePixelCanvas(canvas, common.shape.width, common.shape.height, SAMPLE_SIZE);
    ui.sampleCanvases.push(canvas);
    ui.samples.appendChild(canvas);
  }
  ui.sampleCanvases.forEach((canvas, i) => {
    canvas.hidden = i >= shown.length;
    if (i < shown.length) {
      drawImageData(canvas, inputImage(readBlock(common.arrays.samples, [shown[i]]), common.shape, common.range[0], common.range[1]));
      canvas.setAttribute("aria-label", `Sample ${i + 1} that activates attribute ${j} most`);
    }
  });
  root.dataset.samples = String(shown.length);
}

/**
 * A 2-feature model's attribute as a heat map over the plane, the reference points coloured
 * by g's class and the top samples ringed.
 * @param {Shell} shell
 * @param {Float32Array} picture R x R, rows from the bottom of the plane
 * @param {Float32Array} top
 */
function drawPlane(shell, picture, top) {
  const { common, ui, palette, root } = shell;
  const [xmin, xmax, ymin, ymax] = common.meta.bounds;
  const size = Math.round(Math.sqrt(picture.length));
  let most = 1e-9;
  for (const v of picture) most = Math.max(most, Math.abs(v));
  const heat = pixelImage(size, size, (i) => {
    const row = size - 1 - Math.floor(i / size); // canvas rows run down, the plane's y up
    return palette.sequential(Math.abs(picture[row * size + (i % size)]), most);
  });
  const ctx = ui.planeCtx;
  ctx.clearRect(0, 0, PLANE_SIZE, PLANE_SIZE);
  drawImageData(ui.picture, heat, true, [0, 0, PLANE_SIZE, PLANE_SIZE]);
  const sx = (/** @type {number} */ v) => ((v - xmin) / (xmax - xmin)) * PLANE_SIZE;
  const sy = (/** @type {number} */ v) => (1 - (v - ymin) / (ymax - ymin)) * PLANE_SIZE;
  const points = common.arrays.reference.data;
  const classes = common.arrays.reference_class.data;
  for (let i = 0; i < classes.length; i++) {
    ctx.fillStyle = cssColor(palette.classColor(classes[i]), 0.8);
    ctx.fillRect(sx(points[2 * i]) - 1.5, sy(points[2 * i + 1]) - 1.5, 3, 3);
  }
  const ink = themeColor(root, "--jp-ui-font-color1", [33, 33, 33]);
  ctx.strokeStyle = cssColor(ink);
  ctx.lineWidth = 2;
  for (const i of top) {
    if (i < 0) continue;
    const [x, y] = readBlock(common.arrays.samples, [i]);
    ctx.beginPath();
    ctx.arc(sx(x), sy(y), 6, 0, 2 * Math.PI);
    ctx.stroke();
  }
  const x = readBlock(common.arrays.x, [shell.index]);
  ctx.fillStyle = palette.spec.target;
  ctx.beginPath();
  ctx.arc(sx(x[0]), sy(x[1]), 5, 0, 2 * Math.PI);
  ctx.fill();
}

/**
 * The gallery shows only the inputs g predicts as the filtered class.
 * @param {Shell} shell
 */
function drawGallery(shell) {
  const { ui, common, state } = shell;
  if (!ui.picker) return;
  const filter = state.classFilter;
  ui.picker.buttons.forEach((button, i) => {
    button.hidden = !(filter === null || filter === undefined || common.source[i] === filter);
  });
}

export default { render: (/** @type {{ model: any, el: HTMLElement }} */ context) => mountExplorer(context, ATTRIBUTE_VIEW) };
