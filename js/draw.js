// @ts-check
// Canvas drawing shared by every explorer: pixel images upscaled without smoothing,
// signed overlays, theme colors, axes for 2-D maps.
import { clamp, inkGray, mix } from "./colormaps.js";

/** @typedef {[number, number, number]} Color3 */
/** @typedef {{ channels: number, height: number, width: number }} ImageShape (channels, height, width) */

/**
 * ImageData of a w x h image whose pixel i gets colorAt(i) (opaque).
 * @param {number} width
 * @param {number} height
 * @param {(i: number) => Color3} colorAt
 */
export function pixelImage(width, height, colorAt) {
  const image = new ImageData(width, height);
  const d = image.data;
  for (let i = 0; i < width * height; i++) {
    const c = colorAt(i);
    d[4 * i] = c[0]; d[4 * i + 1] = c[1]; d[4 * i + 2] = c[2]; d[4 * i + 3] = 255;
  }
  return image;
}

/**
 * An input as pixels: one channel in ink-on-paper gray, three channels as RGB, others
 * averaged to gray. Values are mapped from [lo, hi].
 * @param {Float32Array} values
 * @param {ImageShape} shape
 * @param {number} lo
 * @param {number} hi
 */
export function inputImage(values, shape, lo, hi) {
  const { channels, height, width } = shape;
  const plane = height * width;
  return pixelImage(width, height, (i) => {
    if (channels === 3) {
      const f = (/** @type {number} */ c) => 255 * clamp((values[c * plane + i] - lo) / (hi - lo || 1), 0, 1);
      return [f(0), f(1), f(2)];
    }
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += values[c * plane + i];
    return inkGray(sum / channels, lo, hi);
  });
}

/**
 * The per-pixel channel mean of a map (of |values| with `magnitude`), colored by `colorOf`
 * (e.g. a palette's diverging or sequential map).
 * @param {Float32Array} values
 * @param {ImageShape} shape
 * @param {(v: number) => Color3} colorOf
 * @param {boolean} [magnitude]
 */
export function meanImage(values, shape, colorOf, magnitude = false) {
  const { channels, height, width } = shape;
  const plane = height * width;
  return pixelImage(width, height, (i) => {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += magnitude ? Math.abs(values[c * plane + i]) : values[c * plane + i];
    return colorOf(sum / channels);
  });
}

/**
 * `over` blended onto `base` with opacity alpha (both the same size).
 * @param {ImageData} base
 * @param {ImageData} over
 * @param {number} alpha
 */
export function blend(base, over, alpha) {
  const out = new ImageData(base.width, base.height);
  const a = clamp(alpha, 0, 1);
  for (let i = 0; i < out.data.length; i += 4) {
    for (let c = 0; c < 3; c++) out.data[i + c] = base.data[i + c] + (over.data[i + c] - base.data[i + c]) * a;
    out.data[i + 3] = 255;
  }
  return out;
}

/**
 * A copy of an image moved towards white by `amount` in [0, 1] (a quiet base for overlays).
 * @param {ImageData} image
 * @param {number} amount
 */
export function lighten(image, amount) {
  const out = new ImageData(image.width, image.height);
  for (let i = 0; i < out.data.length; i += 4) {
    for (let c = 0; c < 3; c++) out.data[i + c] = image.data[i + c] + (255 - image.data[i + c]) * amount;
    out.data[i + 3] = 255;
  }
  return out;
}

/** @type {WeakMap<HTMLCanvasElement, HTMLCanvasElement>} */
const scratchCanvases = new WeakMap();

/**
 * Size a canvas showing a w x h pixel image at about cssSize CSS pixels: the backing store
 * is an integer multiple of the image so nearest-neighbour upscaling keeps square pixels.
 * @param {HTMLCanvasElement} canvas
 * @param {number} width
 * @param {number} height
 * @param {number} cssSize the longer side, in CSS pixels
 */
export function sizePixelCanvas(canvas, width, height, cssSize) {
  const ratio = globalThis.devicePixelRatio || 1;
  const factor = Math.max(1, Math.round((cssSize * ratio) / Math.max(width, height)));
  canvas.width = width * factor;
  canvas.height = height * factor;
  const cssScale = cssSize / Math.max(width, height);
  canvas.style.width = `${Math.round(width * cssScale)}px`;
  canvas.style.height = `${Math.round(height * cssScale)}px`;
}

/**
 * Draw ImageData onto a (larger) canvas with nearest-neighbour upscaling.
 * @param {HTMLCanvasElement} canvas
 * @param {ImageData} image
 * @param {boolean} [smooth] interpolate instead (for dense grids such as decision regions)
 * @param {[number, number, number, number]} [rect] x, y, w, h in the context's current coordinates
 *   (default: the whole backing store)
 */
export function drawImageData(canvas, image, smooth = false, rect) {
  let scratch = scratchCanvases.get(canvas);
  if (!scratch) {
    scratch = document.createElement("canvas");
    scratchCanvases.set(canvas, scratch);
  }
  if (scratch.width !== image.width || scratch.height !== image.height) {
    scratch.width = image.width;
    scratch.height = image.height;
  }
  /** @type {CanvasRenderingContext2D} */ (scratch.getContext("2d")).putImageData(image, 0, 0);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.imageSmoothingEnabled = smooth;
  const [x, y, w, h] = rect || [0, 0, canvas.width, canvas.height];
  ctx.drawImage(scratch, x, y, w, h);
}

/**
 * Size a canvas for vector drawing: CSS size w x h, backing store scaled by devicePixelRatio.
 * Returns the 2-D context already scaled so that drawing uses CSS pixels.
 * @param {HTMLCanvasElement} canvas
 * @param {number} width
 * @param {number} height
 */
export function sizeVectorCanvas(canvas, width, height) {
  const ratio = globalThis.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

/** @type {CanvasRenderingContext2D | null} */
let colorProbe = null;

/**
 * Any CSS color string to [r, g, b] (null when the browser cannot parse it).
 * @param {string} text
 * @returns {Color3 | null}
 */
export function parseColor(text) {
  if (!colorProbe) colorProbe = /** @type {CanvasRenderingContext2D} */ (document.createElement("canvas").getContext("2d"));
  colorProbe.fillStyle = "#010203";
  colorProbe.fillStyle = text.trim();
  const value = String(colorProbe.fillStyle);
  if (value === "#010203" && text.trim() !== "#010203") return null;
  if (value.startsWith("#")) {
    return [parseInt(value.slice(1, 3), 16), parseInt(value.slice(3, 5), 16), parseInt(value.slice(5, 7), 16)];
  }
  const parts = value.match(/[\d.]+/g);
  return parts ? [Number(parts[0]), Number(parts[1]), Number(parts[2])] : null;
}

/**
 * The resolved color of a CSS custom property on an element (the theme's colors).
 * @param {Element} el
 * @param {string} name e.g. "--jp-layout-color1"
 * @param {Color3} fallback
 * @returns {Color3}
 */
export function themeColor(el, name, fallback) {
  const value = getComputedStyle(el).getPropertyValue(name);
  return (value && parseColor(value)) || fallback;
}

/**
 * The resolved value of a CSS custom property as a color string for canvas drawing
 * (keeps its alpha), or the fallback.
 * @param {Element} el
 * @param {string} name
 * @param {string} fallback
 */
export function themeCss(el, name, fallback) {
  const value = getComputedStyle(el).getPropertyValue(name).trim();
  return value && parseColor(value) ? value : fallback;
}

/**
 * The theme's colors for plot frames: muted text and tick labels, frame lines, ink for
 * markers, and the font (JupyterLab's variables, with light-theme fallbacks).
 * @param {Element} root
 */
export function axisStyle(root) {
  return {
    font: `11px ${getComputedStyle(root).fontFamily}`,
    text: themeCss(root, "--jp-ui-font-color2", "rgba(0, 0, 0, 0.6)"),
    line: themeCss(root, "--jp-border-color1", "#bdbdbd"),
    ink: themeCss(root, "--jp-ui-font-color1", "rgba(0, 0, 0, 0.87)"),
  };
}

/**
 * Round tick positions covering [lo, hi], about `count` of them.
 * @param {number} lo
 * @param {number} hi
 * @param {number} count
 */
export function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

/**
 * A plot frame with tick marks and labels: x ticks below the box, y ticks left of it.
 * @param {CanvasRenderingContext2D} ctx
 * @param {{ left: number, top: number, width: number, height: number }} box in CSS pixels
 * @param {Array<[number, string]>} xTicks (value, label) pairs
 * @param {Array<[number, string]>} yTicks
 * @param {(v: number) => number} sx value to x pixel
 * @param {(v: number) => number} sy value to y pixel
 * @param {{ font: string, text: string, line: string }} style
 */
export function drawAxes(ctx, box, xTicks, yTicks, sx, sy, style) {
  ctx.font = style.font;
  ctx.fillStyle = style.text;
  ctx.strokeStyle = style.line;
  ctx.lineWidth = 1;
  ctx.strokeRect(box.left + 0.5, box.top + 0.5, box.width - 1, box.height - 1);
  const bottom = box.top + box.height;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const [v, label] of xTicks) {
    ctx.fillText(label, sx(v), bottom + 5);
    ctx.fillRect(sx(v), bottom, 1, 4);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const [v, label] of yTicks) {
    ctx.fillText(label, box.left - 7, sy(v));
    ctx.fillRect(box.left - 4, sy(v), 4, 1);
  }
}

/**
 * Stroke a polyline through [x, y] points.
 * @param {CanvasRenderingContext2D} ctx
 * @param {Array<[number, number]>} points
 */
export function strokePolyline(ctx, points) {
  if (points.length < 2) return;
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (let i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
  ctx.stroke();
}

/**
 * Blend a class color into a background by a confidence in [0, 1].
 * @param {Color3} background
 * @param {Color3} color
 * @param {number} confidence
 * @returns {Color3}
 */
export function shade(background, color, confidence) {
  return mix(background, color, 0.12 + 0.5 * clamp(confidence, 0, 1));
}
