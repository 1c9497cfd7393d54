// @ts-check
// crosslens.AdversarialExplorer, browser half. The image segments a small adversarial attack
// pushes hardest on (AXAI, Rahnama and Tseng 2021, arXiv 2005.10284).
//
// Everything drawn comes from ONE binary payload (trait `_payload`): the attack path
// (`frames`, `probs` per step), the final perturbation `perturbation` (N, C, H, W), each
// value's first kept tail `levels` (a value is kept at tail index t when its level <= t), the
// `segments` (N, H, W) and, at every tail of `meta.tails`, each segment's share of strongly
// attacked pixels `scores` (N, T, S) and the segments best first `ranking` (N, T, S; -1 past
// `num_segments`). The tail, K and step sliders and the segment highlight redraw from it;
// eps and the number of steps go back to the kernel (their traits, debounced), as does the
// shell's target select.
import { readBlock } from "./payload.js";
import { cssColor } from "./colormaps.js";
import { drawImageData, inputImage, lighten, pixelImage } from "./draw.js";
import { controlRow, formatNumber, guardKeys, h, rangeControl, traitSync } from "./controls.js";
import { mountExplorer } from "./explorer.js";
import { pixelFigure } from "./panels.js";

const IMAGE_SIZE = 168;
const SMALL_SIZE = 120;
const SHOWN_BARS = 12;
const KERNEL_WAIT = 400; // ms between eps / steps changes sent to the kernel
const EPS_GRID = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
const MOST_STEPS = 100;
const HELP = "An L2 attack (PGD on the explained class) pushes the image towards another class in small steps; the "
  + "pixels it pushes hardest on are what the classifier relies on. Per colour channel the tails of the perturbation "
  + "(the tail share on each side) mark the strongly attacked pixels; each segment scores the share of its pixels "
  + "that are strongly attacked, and the top K segments are the explanation. Tail and K redraw at once; eps and "
  + "steps rerun the attack in the kernel. Hover a segment or its bar to highlight it.";

/** @typedef {import("./explorer.js").Shell} Shell */

/** @type {import("./explorer.js").ViewSpec} */
const ADVERSARIAL_VIEW = {
  className: "xl-adversarial",
  title: "Adversarial explorer",
  subtitle: () => "adversarial explanations (AXAI) · Rahnama and Tseng 2021",
  busyText: "Attacking…",
  help: () => HELP,
  picker: (common) => common.n > 1,

  syncs(shell) {
    const { model, state } = shell;
    const redrawOn = (/** @type {string} */ name, /** @type {(v: any) => void} */ apply, wait = 100) =>
      traitSync(model, name, (v) => { apply(v); shell.redraw(); }, wait);
    Object.assign(state, {
      tail: Number(model.get("tail")), k: Number(model.get("k")), step: Number(model.get("step")),
      eps: Number(model.get("eps")), steps: Number(model.get("steps")), hover: -1,
    });
    return {
      tail: redrawOn("tail", (v) => { state.tail = v; }),
      k: redrawOn("k", (v) => { state.k = v; }),
      step: redrawOn("step", (v) => { state.step = v; }),
      eps: redrawOn("eps", (v) => { state.eps = v; }, KERNEL_WAIT),
      steps: redrawOn("steps", (v) => { state.steps = v; }, KERNEL_WAIT),
    };
  },

  load(shell) {
    const { state, common } = shell;
    const { arrays, meta } = common;
    state.tails = meta.tails;
    state.attackSteps = meta.attack_steps;
    state.width = arrays.scores.shape[2];
    state.step = Math.min(state.step, state.attackSteps);
    state.version = (state.version || 0) + 1; // a new payload: cached drawings are stale
  },

  build(shell) {
    const { ui, common, state, signal } = shell;
    ui.image = pixelFigure({ caption: "Image and its top segments", role: "image-canvas", shape: common.shape, size: IMAGE_SIZE });
    ui.image.canvas.addEventListener("mousemove", (event) => hoverAt(shell, event), { signal });
    ui.image.canvas.addEventListener("mouseleave", () => setHover(shell, -1), { signal });
    ui.filtered = pixelFigure({ caption: "|filtered d|", role: "perturbation-canvas", shape: common.shape, size: SMALL_SIZE });
    ui.frame = pixelFigure({ caption: "Attack step", role: "frame-canvas", shape: common.shape, size: SMALL_SIZE });
    ui.bars = h("ol", { className: "xl-ax-bars", role: "segment-bars", attrs: { "aria-label": "Segments, best first" } });
    const main = h("div", { className: "xl-main" }, [
      ui.image.node, h("div", { className: "xl-images" }, [ui.filtered.node, ui.frame.node]),
      h("div", { className: "xl-ax-ranking" }, [h("div", { className: "xl-panel-title", text: "Share of strongly attacked pixels" }), ui.bars]),
    ]);

    const slider = (/** @type {string} */ role, /** @type {string} */ label, /** @type {number} */ count,
      /** @type {(i: number) => void} */ onInput) => {
      const input = rangeControl({ role, label, count, signal, onInput });
      const value = h("output", { className: "xl-value", role: `${role}-value` });
      return { input, value };
    };
    ui.tail = slider("tail-slider", "Tail share kept on each side", state.tails.length, (i) => {
      state.tail = state.tails[i];
      shell.syncs.tail.push(state.tail);
      shell.redraw();
    });
    ui.k = slider("k-slider", "Segments in the explanation (K)", Math.max(state.width, 1), (i) => {
      state.k = i + 1;
      shell.syncs.k.push(state.k);
      shell.redraw();
    });
    ui.step = slider("step-slider", "Step of the attack", state.attackSteps + 1, (i) => {
      state.step = i;
      shell.syncs.step.push(i);
      shell.redraw();
    });
    ui.eps = slider("eps-slider", "Attack budget eps (reruns the attack)", EPS_GRID.length, (i) => {
      state.eps = EPS_GRID[i];
      shell.syncs.eps.push(state.eps);
      shell.redraw();
    });
    ui.steps = slider("steps-slider", "Attack steps (reruns the attack)", MOST_STEPS, (i) => {
      state.steps = i + 1;
      shell.syncs.steps.push(state.steps);
      shell.redraw();
    });
    for (const kernel of [ui.eps, ui.steps]) kernel.input.disabled = shell.offline; // they rerun the attack
    const row = (/** @type {string} */ label, /** @type {{ input: HTMLInputElement, value: HTMLElement }} */ s,
      /** @type {string} */ role) => controlRow(label, [h("div", { className: "xl-slider" }, [s.input]), s.value,
      role === "eps" && shell.offline ? h("span", { className: "xl-hint", text: "needs the live notebook" }) : null], role);
    return {
      main,
      controls: [row("Tail", ui.tail, "tail"), row("K", ui.k, "k"), row("Step", ui.step, "step"),
        row("eps", ui.eps, "eps"), row("Steps", ui.steps, "steps")],
    };
  },

  draw(shell, n) {
    const { common, ui, root, state } = shell;
    const t = tailIndex(state);
    const count = common.arrays.num_segments.data[n];
    const k = Math.min(Math.max(1, state.k), count);
    const ranking = readBlock(common.arrays.ranking, [n, t]);
    const chosen = new Set(Array.from(ranking.subarray(0, k)));
    const segments = readBlock(common.arrays.segments, [n]);
    drawImagePanel(shell, n, segments, chosen);
    drawFiltered(shell, n, t);
    const explained = common.target[n];
    const probs = readBlock(common.arrays.probs, [n, state.step]);
    let top = 0;
    for (let c = 1; c < probs.length; c++) if (probs[c] > probs[top]) top = c;
    drawImageData(ui.frame.canvas, inputImage(readBlock(common.arrays.frames, [n, state.step]), common.shape,
      common.range[0], common.range[1]));
    ui.frame.label.textContent = `step ${state.step}: ${common.names[top]} · p(${common.names[explained]}) `
      + `${formatNumber(probs[explained])}`;
    drawBars(shell, n, t, ranking, count, k);

    setSlider(ui.tail, t, `${Math.round(100 * state.tails[t])} %`);
    ui.k.input.max = String(Math.max(count - 1, 0));
    setSlider(ui.k, k - 1, `${k} of ${count}`);
    setSlider(ui.step, state.step, `${state.step} / ${state.attackSteps}`);
    setSlider(ui.eps, nearest(EPS_GRID, state.eps), `${state.eps}`);
    setSlider(ui.steps, state.steps - 1, `${state.steps}`);
    shell.setStatus(`Input ${n + 1} of ${common.n} · predicted ${common.names[common.source[n]]} · explaining `
      + `${common.names[explained]} · top ${k} of ${count} segments at tail ${Math.round(100 * state.tails[t])} % · `
      + `attack step ${state.step}: ${common.names[top]}`);
    Object.assign(root.dataset, {
      tail: String(state.tails[t]), k: String(k), step: String(state.step), top: Array.from(chosen).join(","),
      frameClass: String(top), hover: String(state.hover),
    });
  },

  onIndex(shell) {
    shell.state.hover = -1;
  },
};

/** @param {Record<string, any>} state */
function tailIndex(state) {
  return nearest(state.tails, state.tail);
}

/**
 * @param {number[]} values
 * @param {number} v
 */
function nearest(values, v) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (Math.abs(values[i] - v) < Math.abs(values[best] - v)) best = i;
  return best;
}

/**
 * @param {{ input: HTMLInputElement, value: HTMLElement }} slider
 * @param {number} position
 * @param {string} text
 */
function setSlider(slider, position, text) {
  slider.input.value = String(position);
  slider.input.setAttribute("aria-valuetext", text);
  slider.value.textContent = text;
}

/**
 * @param {Shell} shell
 * @param {number} label
 */
function setHover(shell, label) {
  if (shell.state.hover === label) return;
  shell.state.hover = label;
  shell.redraw();
}

/**
 * The segment under the mouse on the image.
 * @param {Shell} shell
 * @param {MouseEvent} event
 */
function hoverAt(shell, event) {
  const { common, ui, index } = shell;
  const { height, width } = common.shape;
  const box = ui.image.canvas.getBoundingClientRect();
  const column = Math.floor(((event.clientX - box.left) / box.width) * width);
  const row = Math.floor(((event.clientY - box.top) / box.height) * height);
  if (column < 0 || row < 0 || column >= width || row >= height) return setHover(shell, -1);
  setHover(shell, common.arrays.segments.data[(index * height + row) * width + column]);
}

/**
 * The image, the top K segments at full strength and the others faded, segment borders, the
 * hovered segment outlined.
 * @param {Shell} shell
 * @param {number} n
 * @param {Float32Array} segments
 * @param {Set<number>} chosen
 */
function drawImagePanel(shell, n, segments, chosen) {
  const { common, ui, palette, state } = shell;
  const { height, width } = common.shape;
  const picture = inputImage(readBlock(common.arrays.x, [n]), common.shape, common.range[0], common.range[1]);
  const faded = lighten(picture, 0.65);
  const shown = pixelImage(width, height, (i) => {
    const source = chosen.has(segments[i]) ? picture : faded;
    return [source.data[4 * i], source.data[4 * i + 1], source.data[4 * i + 2]];
  });
  const canvas = ui.image.canvas;
  drawImageData(canvas, shown);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const sx = canvas.width / width;
  const sy = canvas.height / height;
  // every border is one cached path per input and payload; the hovered segment's outline is drawn on top
  const key = `${state.version}|${n}|${sx}`;
  if (state.bordersKey !== key) {
    state.borders = segmentPath(segments, height, width, sx, sy, -1);
    state.bordersKey = key;
  }
  ctx.strokeStyle = cssColor(palette.classColor(5), 0.9);
  ctx.lineWidth = Math.max(1, sx / 12);
  ctx.stroke(state.borders);
  if (state.hover >= 0) {
    ctx.strokeStyle = palette.spec.target;
    ctx.lineWidth = Math.max(2, sx / 5);
    ctx.stroke(segmentPath(segments, height, width, sx, sy, state.hover));
  }
  ui.image.label.textContent = state.hover >= 0 ? `Segment ${state.hover}` : `Top ${chosen.size} segments`;
}

/**
 * The borders between segments (``label`` -1) or the outline of one segment, as a path in
 * canvas pixels (``sx``, ``sy`` per image pixel).
 * @param {Float32Array} segments
 * @param {number} height
 * @param {number} width
 * @param {number} sx
 * @param {number} sy
 * @param {number} label
 */
function segmentPath(segments, height, width, sx, sy, label) {
  const path = new Path2D();
  const line = (/** @type {number} */ x0, /** @type {number} */ y0, /** @type {number} */ x1, /** @type {number} */ y1) => {
    path.moveTo(x0 * sx, y0 * sy);
    path.lineTo(x1 * sx, y1 * sy);
  };
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const here = segments[r * width + c];
      if (label >= 0 && here !== label) continue;
      if (c + 1 < width && segments[r * width + c + 1] !== here) line(c + 1, r, c + 1, r + 1);
      if (r + 1 < height && segments[(r + 1) * width + c] !== here) line(c, r + 1, c + 1, r + 1);
      if (label < 0) continue;
      if (c === 0 || segments[r * width + c - 1] !== here) line(c, r, c, r + 1);
      if (r === 0 || segments[(r - 1) * width + c] !== here) line(c, r, c + 1, r);
      if (c + 1 === width) line(width, r, width, r + 1);
      if (r + 1 === height) line(c, height, c + 1, height);
    }
  }
  return path;
}

/**
 * |filtered d| at tail index t: per channel the values kept at that tail, summed.
 * @param {Shell} shell
 * @param {number} n
 * @param {number} t
 */
function drawFiltered(shell, n, t) {
  const { common, ui, palette } = shell;
  const { channels, height, width } = common.shape;
  const plane = height * width;
  const d = readBlock(common.arrays.perturbation, [n]);
  const levels = readBlock(common.arrays.levels, [n]);
  const filtered = new Float32Array(plane);
  let most = 1e-12;
  for (let i = 0; i < plane; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) if (levels[c * plane + i] <= t) sum += d[c * plane + i];
    filtered[i] = Math.abs(sum);
    most = Math.max(most, filtered[i]);
  }
  drawImageData(ui.filtered.canvas, pixelImage(width, height, (i) => palette.sequential(filtered[i], most)));
}

/**
 * The best segments as a ranked bar list; the top K marked; hovering or focusing a bar
 * highlights its segment.
 * @param {Shell} shell
 * @param {number} n
 * @param {number} t
 * @param {Float32Array} ranking
 * @param {number} count
 * @param {number} k
 */
function drawBars(shell, n, t, ranking, count, k) {
  const { common, ui, state, signal } = shell;
  const scores = readBlock(common.arrays.scores, [n, t]);
  const shown = Math.min(count, SHOWN_BARS);
  while (ui.bars.children.length > shown) ui.bars.lastChild?.remove();
  while (ui.bars.children.length < shown) {
    const fill = h("span", { className: "xl-prob-fill" });
    const item = h("li", {}, [h("button", {
      className: "xl-prob xl-ax-bar", role: "segment-bar", attrs: { type: "button" },
    }, [h("span", { className: "xl-prob-name" }), h("span", { className: "xl-prob-track" }, [fill]),
      h("span", { className: "xl-prob-value" })])]);
    const button = /** @type {HTMLButtonElement} */ (item.firstChild);
    guardKeys(button, signal);
    const enter = () => setHover(shell, Number(button.dataset.segment));
    button.addEventListener("mouseenter", enter, { signal });
    button.addEventListener("focus", enter, { signal });
    button.addEventListener("mouseleave", () => setHover(shell, -1), { signal });
    button.addEventListener("blur", () => setHover(shell, -1), { signal });
    ui.bars.appendChild(item);
  }
  Array.from(ui.bars.children).forEach((item, i) => {
    const button = /** @type {HTMLButtonElement} */ (item.firstChild);
    const [name, track, value] = /** @type {HTMLElement[]} */ (Array.from(button.children));
    const label = ranking[i];
    const score = scores[label];
    button.dataset.segment = String(label);
    button.classList.toggle("xl-is-target", i < k);
    button.classList.toggle("xl-ax-hover", label === state.hover);
    button.setAttribute("aria-label", `Segment ${label}: ${Math.round(100 * score)} % strongly attacked`
      + `${i < k ? ", in the explanation" : ""}`);
    name.textContent = `#${i + 1} seg. ${label}`;
    /** @type {HTMLElement} */ (track.firstChild).style.width = `${(100 * score).toFixed(1)}%`;
    value.textContent = formatNumber(score, 2);
  });
}

export default { render: (/** @type {{ model: any, el: HTMLElement }} */ context) => mountExplorer(context, ADVERSARIAL_VIEW) };
