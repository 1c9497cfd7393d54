// @ts-check
// Composite pieces shared by the explorers: pixel figures, the input picker and the class
// probability bars. Text is set with textContent only; every control guards its keys.
import { drawImageData, inputImage, sizePixelCanvas } from "./draw.js";
import { formatNumber, guardKeys, h } from "./controls.js";
import { readBlock } from "./payload.js";

/** @typedef {{ channels: number, height: number, width: number }} ImageShape */

/**
 * A captioned pixel canvas (`<figure>` with `<canvas role="img">`).
 * @param {{ caption: string, role: string, shape: ImageShape, size: number }} options size: CSS pixels
 */
export function pixelFigure({ caption, role, shape, size }) {
  const canvas = h("canvas", { className: "xl-pixels", role, attrs: { role: "img", "aria-label": caption } });
  sizePixelCanvas(canvas, shape.width, shape.height, size);
  const label = h("figcaption", { text: caption });
  return { canvas, label, node: h("figure", { className: "xl-figure" }, [canvas, label]) };
}

/**
 * A strip of thumbnail buttons, one per input; `select(i)` marks input i as pressed and
 * `update(x, labels)` redraws them (inputs that follow a drawing pad change).
 * @param {{ x: any, shape: ImageShape, range: [number, number], labels: string[],
 *   size: number, signal: AbortSignal, onSelect: (index: number) => void }} options
 */
export function inputPicker({ x, shape, range, labels, size, signal, onSelect }) {
  const node = h("div", { className: "xl-picker", role: "index-picker", attrs: { "aria-label": "Inputs" } });
  /** @type {HTMLCanvasElement[]} */
  const canvases = [];
  const buttons = labels.map((label, i) => {
    const canvas = h("canvas", { className: "xl-thumb-canvas" });
    sizePixelCanvas(canvas, shape.width, shape.height, size);
    canvases.push(canvas);
    const button = h("button", {
      className: "xl-thumb", role: "index-option", attrs: { type: "button", "data-index": i, "aria-label": label },
    }, [canvas]);
    guardKeys(button, signal);
    button.addEventListener("click", () => onSelect(i), { signal });
    node.appendChild(button);
    return button;
  });
  /**
   * @param {any} values
   * @param {string[]} names
   */
  function update(values, names) {
    canvases.forEach((canvas, i) => drawImageData(canvas, inputImage(readBlock(values, [i]), shape, range[0], range[1])));
    buttons.forEach((button, i) => button.setAttribute("aria-label", names[i]));
  }
  update(x, labels);
  return {
    node,
    buttons,
    update,
    /** @param {number} index */
    select(index) {
      buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === index)));
    },
  };
}

/**
 * One bar per class (`role="meter"`, data-role "prob-bar") highlighting the source and
 * target classes, with a key. `update(probs, source, target)` redraws them.
 * @param {{ names: string[], title: string, role?: string, context?: string, compact?: boolean }} options
 *   context: appended to each bar's aria-label ("Probability of 3" + context)
 */
export function probabilityBars({ names, title, role = "probabilities", context = "", compact = false }) {
  const node = h("div", { className: compact ? "xl-probs xl-probs-compact" : "xl-probs", role }, [
    h("div", { className: "xl-panel-title", text: title }),
  ]);
  const bars = names.map((name, k) => {
    const fill = h("span", { className: "xl-prob-fill" });
    const value = h("span", { className: "xl-prob-value" });
    const bar = h("div", {
      className: "xl-prob-track", role: "prob-bar",
      attrs: {
        role: "meter", "aria-valuemin": 0, "aria-valuemax": 1, "aria-valuenow": 0,
        "aria-label": `Probability of ${name}${context}`, "data-class": k,
      },
    }, [fill]);
    const row = h("div", { className: "xl-prob", role: "prob-row", attrs: { "data-class": k } }, [
      h("span", { className: "xl-prob-name", text: name }), bar, value,
    ]);
    node.appendChild(row);
    return { row, bar, fill, value };
  });
  node.appendChild(h("div", { className: "xl-prob-key" }, [
    h("span", { className: "xl-key xl-key-source", text: "predicted class of x" }),
    h("span", { className: "xl-key xl-key-target", text: "target class" }),
  ]));
  return {
    node,
    /**
     * @param {Float32Array | null} probs null: no data (empty bars)
     * @param {number} source
     * @param {number} target
     */
    update(probs, source, target) {
      bars.forEach((b, c) => {
        const p = probs ? probs[c] : 0;
        b.fill.style.width = `${(100 * p).toFixed(2)}%`;
        b.value.textContent = !probs ? "–" : p >= 0.995 ? "1.00" : formatNumber(p, 2);
        b.bar.setAttribute("aria-valuenow", p.toFixed(4));
        b.bar.dataset.value = String(p);
        b.row.classList.toggle("xl-is-source", c === source);
        b.row.classList.toggle("xl-is-target", c === target);
        b.bar.dataset.source = String(c === source);
        b.bar.dataset.target = String(c === target);
      });
    },
  };
}
