// @ts-check
// Decoding of crosslens payloads (written by crosslens.payload, the module widget/payload.py). Layout, little-endian:
// "XLP1" | uint32 header length | JSON header | arrays, each on an 8-byte boundary.
// Quantized arrays hold integers q and decode as min + q * scale.

/**
 * @typedef {Float32Array | Int32Array | Uint32Array | Uint8Array | Uint16Array | Int16Array | Int8Array} NumericArray
 * @typedef {{ name: string, dtype: string, shape: number[], data: NumericArray, min: number, scale: number, quantized: boolean }} PayloadArray
 * @typedef {{ meta: Record<string, any>, arrays: Record<string, PayloadArray>, nbytes: number }} Payload
 */

const TYPED = {
  float32: Float32Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  int8: Int8Array,
};

/**
 * Decode a payload that arrived as a DataView (anywidget binary trait), an ArrayBuffer or
 * a typed array. The view's byteOffset/byteLength are honoured: a trait's DataView often
 * starts in the middle of a larger buffer.
 * @param {DataView | ArrayBuffer | ArrayBufferView} source
 * @returns {Payload}
 */
export function decodePayload(source) {
  const view = source instanceof DataView
    ? source
    : source instanceof ArrayBuffer
      ? new DataView(source)
      : new DataView(source.buffer, source.byteOffset, source.byteLength);
  if (view.byteLength < 8) throw new Error("crosslens: payload too short");
  const magic = String.fromCharCode(view.getUint8(0), view.getUint8(1), view.getUint8(2), view.getUint8(3));
  if (magic !== "XLP1") throw new Error(`crosslens: bad payload magic ${JSON.stringify(magic)}`);
  const headerLength = view.getUint32(4, true);
  const headerBytes = new Uint8Array(view.buffer, view.byteOffset + 8, headerLength);
  const header = JSON.parse(new TextDecoder().decode(headerBytes));
  /** @type {Record<string, PayloadArray>} */
  const arrays = {};
  for (const [name, entry] of Object.entries(header.arrays)) {
    const Typed = TYPED[/** @type {keyof typeof TYPED} */ (entry.dtype)];
    if (!Typed) throw new Error(`crosslens: unsupported dtype ${entry.dtype} for ${name}`);
    if (entry.offset + entry.nbytes > view.byteLength) throw new Error(`crosslens: array ${name} overruns the payload`);
    const start = view.byteOffset + entry.offset;
    const count = entry.nbytes / Typed.BYTES_PER_ELEMENT;
    // Typed arrays need aligned offsets; copy the bytes when the view itself is misaligned.
    const data = start % Typed.BYTES_PER_ELEMENT === 0
      ? new Typed(view.buffer, start, count)
      : new Typed(view.buffer.slice(start, start + entry.nbytes));
    const quantized = typeof entry.scale === "number";
    arrays[name] = {
      name, dtype: entry.dtype, shape: entry.shape, data,
      min: quantized ? entry.min : 0, scale: quantized ? entry.scale : 1, quantized,
    };
  }
  return { meta: header.meta || {}, arrays, nbytes: view.byteLength };
}

/**
 * Row-major strides (in elements) of a shape.
 * @param {number[]} shape
 * @returns {number[]}
 */
export function strides(shape) {
  const out = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1];
  return out;
}

/**
 * Flat element offset of the leading indices `index` (fewer indices than dimensions address
 * a whole block, e.g. one frame).
 * @param {PayloadArray} array
 * @param {number[]} index
 */
export function offsetOf(array, index) {
  const s = strides(array.shape);
  let offset = 0;
  for (let i = 0; i < index.length; i++) {
    if (index[i] < 0 || index[i] >= array.shape[i]) throw new RangeError(`crosslens: index ${index} out of range for ${array.name}`);
    offset += index[i] * s[i];
  }
  return offset;
}

/**
 * Number of elements in the block addressed by `depth` leading indices.
 * @param {PayloadArray} array
 * @param {number} depth
 */
export function blockSize(array, depth) {
  return array.shape.slice(depth).reduce((a, b) => a * b, 1);
}

/**
 * The real values of the block at leading indices `index` (dequantized), as a Float32Array.
 * @param {PayloadArray} array
 * @param {number[]} index
 * @param {Float32Array} [out] reused when large enough
 * @returns {Float32Array}
 */
export function readBlock(array, index, out) {
  const count = blockSize(array, index.length);
  const start = offsetOf(array, index);
  const target = out && out.length === count ? out : new Float32Array(count);
  const { data, min, scale } = array;
  if (array.quantized) {
    for (let i = 0; i < count; i++) target[i] = min + data[start + i] * scale;
  } else {
    for (let i = 0; i < count; i++) target[i] = data[start + i];
  }
  return target;
}

/**
 * One real value at a full index.
 * @param {PayloadArray} array
 * @param {number[]} index
 */
export function valueAt(array, index) {
  const v = array.data[offsetOf(array, index)];
  return array.quantized ? array.min + v * array.scale : v;
}
