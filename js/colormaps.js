// @ts-check
// Colour maps shared by every explorer. Colours are [r, g, b] triples in 0..255; the
// palette itself is defined once in Python (crosslens._style.PALETTE) and arrives in each
// payload's metadata.

/** @typedef {[number, number, number]} RGB */
/**
 * @typedef {{ classes: string[], source: string, target: string, diverging: string[], sequential: string[],
 *   methods: Record<string, string> }} PaletteSpec
 */

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
 * CSS color string of an RGB triple.
 * @param {RGB} c
 * @param {number} [alpha]
 */
export function cssColor(c, alpha = 1) {
  const [r, g, b] = c.map((v) => Math.round(v));
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/**
 * "#rrggbb" to an RGB triple.
 * @param {string} hex
 * @returns {RGB}
 */
export function hexColor(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
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
 * A CSS linear-gradient through color stops, left to right (for legends).
 * @param {RGB[]} stops
 */
function gradientCss(stops) {
  const parts = stops.map((c, i) => `${cssColor(c)} ${(100 * i / (stops.length - 1)).toFixed(1)}%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
}

/**
 * The payload's palette as colour functions.
 * @param {PaletteSpec} spec
 */
export function paletteOf(spec) {
  const classes = spec.classes.map(hexColor);
  const divergingStops = spec.diverging.map(hexColor);
  const sequentialStops = spec.sequential.map(hexColor);
  return {
    spec,
    /** Color of class k (cycles through the class colors). @param {number} k @returns {RGB} */
    classColor: (k) => classes[((k % classes.length) + classes.length) % classes.length],
    /** Signed value in [-limit, limit]: negative blue, zero white, positive red. @param {number} v @param {number} limit */
    diverging: (v, limit) => rampColor(divergingStops, ((limit > 0 ? clamp(v / limit, -1, 1) : 0) + 1) / 2),
    /** Magnitude in [0, limit]: zero white, then darker. @param {number} v @param {number} limit */
    sequential: (v, limit) => rampColor(sequentialStops, limit > 0 ? v / limit : 0),
    divergingGradient: () => gradientCss(divergingStops),
    sequentialGradient: () => gradientCss(sequentialStops),
  };
}

/** @typedef {ReturnType<typeof paletteOf>} Palette */
