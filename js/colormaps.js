// @ts-check
// Colormaps shared by every explorer. Colors are [r, g, b] triples in 0..255.

/** @typedef {[number, number, number]} RGB */

/** Blue-white-red stops (ColorBrewer RdBu, reversed): negative blue, zero white, positive red. */
const DIVERGING_STOPS = /** @type {RGB[]} */ ([
  [33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43],
]);

/** White-to-dark stops for magnitudes (magma, reversed, starting at white): zero is white. */
const SEQUENTIAL_STOPS = /** @type {RGB[]} */ ([
  [255, 255, 255], [252, 253, 191], [254, 159, 109], [222, 73, 104], [140, 41, 129], [59, 15, 112],
]);

/** Categorical class colors (Tableau 10): readable on light and dark backgrounds. */
export const CLASS_COLORS = /** @type {RGB[]} */ ([
  [78, 121, 167], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79],
  [237, 201, 72], [176, 122, 161], [255, 157, 167], [156, 117, 95], [186, 176, 172],
]);

/**
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 */
export function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Linear blend of two colors, t = 0 gives a, t = 1 gives b.
 * @param {RGB} a
 * @param {RGB} b
 * @param {number} t
 * @returns {RGB}
 */
export function mix(a, b, t) {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/**
 * Signed value in [-limit, limit] to blue-white-red; zero is white.
 * @param {number} v
 * @param {number} limit
 * @returns {RGB}
 */
export function diverging(v, limit) {
  const u = limit > 0 ? clamp(v / limit, -1, 1) : 0;
  return rampColor(DIVERGING_STOPS, (u + 1) / 2);
}

/**
 * Color at position u in [0, 1] of a list of stops (linear between neighbours).
 * @param {RGB[]} stops
 * @param {number} u
 * @returns {RGB}
 */
function rampColor(stops, u) {
  const x = clamp(u, 0, 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  return mix(stops[i], stops[i + 1], x - i);
}

/**
 * Magnitude in [0, limit] to white-to-dark (zero is white).
 * @param {number} v
 * @param {number} limit
 * @returns {RGB}
 */
export function sequential(v, limit) {
  return rampColor(SEQUENTIAL_STOPS, limit > 0 ? v / limit : 0);
}

/**
 * Pixel value to gray, ink on paper: lo is white, hi is black (like matplotlib's gray_r).
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 * @returns {RGB}
 */
export function inkGray(v, lo, hi) {
  const g = 255 * (1 - clamp((v - lo) / (hi - lo || 1), 0, 1));
  return [g, g, g];
}

/**
 * Color of class k (cycles after 10).
 * @param {number} k
 * @returns {RGB}
 */
export function classColor(k) {
  return CLASS_COLORS[((k % CLASS_COLORS.length) + CLASS_COLORS.length) % CLASS_COLORS.length];
}

/**
 * CSS color string of an RGB triple.
 * @param {RGB} c
 * @param {number} [alpha]
 */
export function cssColor(c, alpha = 1) {
  const [r, g, b] = c.map((v) => Math.round(v));
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/**
 * A CSS linear-gradient through color stops, left to right (for legends).
 * @param {RGB[]} stops
 */
function gradientCss(stops) {
  const parts = stops.map((c, i) => `${cssColor(c)} ${(100 * i / (stops.length - 1)).toFixed(1)}%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
}

/** A CSS linear-gradient of the diverging map (for legends). */
export function divergingGradient() {
  return gradientCss(DIVERGING_STOPS);
}

/** A CSS linear-gradient of the sequential (magnitude) map (for legends). */
export function sequentialGradient() {
  return gradientCss(SEQUENTIAL_STOPS);
}
