"""One binary payload for the front end: named arrays plus a small JSON header.

Every explorer computes what its front end needs once (whole paths of frames, probability
curves, region grids), packs it with :func:`pack` and sends it as ONE binary trait; the
browser decodes it with ``js/payload.js`` and never asks the kernel while scrubbing. Numbers
never travel as JSON lists.

Layout (all little-endian)::

    bytes 0..3     magic b"XLP1"
    bytes 4..7     uint32 H, the length of the JSON header in bytes
    bytes 8..8+H   UTF-8 JSON header, space-padded so that the data starts on an 8-byte boundary
    data           each array's bytes, each starting on an 8-byte boundary

Header::

    {"version": 1,
     "meta": {...},                     # free-form JSON for the front end
     "arrays": {name: {"dtype": "float32" | "int32" | "uint8" | "uint16" | ...,
                       "shape": [...],
                       "offset": int,   # from the start of the payload
                       "nbytes": int,
                       "min": float, "scale": float}}}   # quantized arrays only

A quantized array stores integers q and decodes as ``min + q * scale`` (:func:`quantized`).
Floating arrays are stored as float32, int64 as int32 (range-checked), bool as uint8.

Example:
    >>> import torch
    >>> blob = pack({"t": torch.linspace(0, 1, 5), "frames": quantized(torch.rand(2, 5, 8, 8))}, {"kind": "demo"})
    >>> arrays, meta = unpack(blob)
    >>> arrays["frames"].shape, arrays["frames"].dtype.name, meta["kind"]
    ((2, 5, 8, 8), 'float32', 'demo')
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["MAGIC", "Quantized", "quantized", "pack", "unpack", "read_header"]

MAGIC = b"XLP1"
VERSION = 1
ALIGN = 8
_PLAIN = {"float32", "int32", "uint8", "uint16", "int16", "int8", "uint32"}
_QUANT = {"uint8": 255, "uint16": 65535}


@dataclass(frozen=True)
class Quantized:
    """An array to be stored as uint8/uint16 integers q with ``value = min + q * scale``.

    Build it with :func:`quantized`.
    """

    values: np.ndarray
    dtype: str
    value_range: tuple[float, float] | None


def _as_numpy(values, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, on any device
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype == object:
        raise TypeError(f"payload array {name!r} must hold numbers, got objects")
    return array


def quantized(values, dtype: str = "uint8", value_range: tuple[float, float] | None = None) -> Quantized:
    """Mark ``values`` for quantized storage (``dtype`` "uint8" or "uint16").

    ``value_range=(lo, hi)`` fixes the mapped range (values outside are clipped); by default
    it is the array's own min and max, so nothing is clipped and the error is at most
    ``scale / 2 = (max - min) / (2 * (2**bits - 1))``.
    """
    if dtype not in _QUANT:
        raise ValueError(f"dtype must be one of {sorted(_QUANT)}, got {dtype!r}")
    if value_range is not None:
        lo, hi = (float(v) for v in value_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"value_range must be finite (lo, hi) with lo <= hi, got {value_range!r}")
        value_range = (lo, hi)
    return Quantized(values=values, dtype=dtype, value_range=value_range)


def _encode(name: str, item) -> tuple[np.ndarray, dict]:
    """The stored array (C-contiguous, little-endian) and its header entry."""
    if isinstance(item, Quantized):
        values = _as_numpy(item.values, name).astype(np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"payload array {name!r} contains NaN or infinite values")
        levels = _QUANT[item.dtype]
        if item.value_range is not None:
            lo, hi = item.value_range
        elif values.size:
            lo, hi = float(values.min()), float(values.max())
        else:
            lo, hi = 0.0, 0.0
        scale = (hi - lo) / levels
        if scale > 0:
            q = np.rint((np.clip(values, lo, hi) - lo) / scale)
        else:
            q = np.zeros_like(values)
        stored = q.astype(np.dtype(item.dtype).newbyteorder("<"))
        return stored, {"dtype": item.dtype, "shape": list(values.shape), "min": lo, "scale": scale}
    array = _as_numpy(item, name)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"payload array {name!r} contains NaN or infinite values")
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu" and array.dtype.name not in _PLAIN:
        if array.size and (array.min() < -(2**31) or array.max() > 2**31 - 1):
            raise ValueError(f"payload array {name!r} does not fit in int32")
        array = array.astype(np.int32)
    elif array.dtype.name not in _PLAIN:
        raise TypeError(f"payload array {name!r} has unsupported dtype {array.dtype}")
    stored = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return stored, {"dtype": stored.dtype.name, "shape": list(array.shape)}


def _pad(length: int) -> int:
    return (-length) % ALIGN


def pack(arrays: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> bytes:
    """Pack named arrays (tensors, numpy arrays or :func:`quantized` ones) and JSON ``meta``
    into one ``bytes`` object (layout in the module docstring). Deterministic."""
    stored, entries = [], {}
    for name, item in arrays.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"payload array names must be non-empty strings, got {name!r}")
        array, entry = _encode(name, item)
        stored.append(array)
        entries[name] = entry
    # The header holds the offsets, whose digits change its length: reserve room, then fill in.
    header = {"version": VERSION, "meta": dict(meta or {}), "arrays": entries}
    for entry, array in zip(entries.values(), stored):
        entry["offset"], entry["nbytes"] = 0, array.nbytes
    reserve = len(json.dumps(header, separators=(",", ":"), allow_nan=False)) + 12 * len(stored) + 16
    start = 8 + reserve + _pad(8 + reserve)
    offset = start
    for entry, array in zip(entries.values(), stored):
        entry["offset"] = offset
        offset += array.nbytes + _pad(array.nbytes)
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(text) > start - 8:  # pragma: no cover - the reserve always suffices
        raise AssertionError("payload header reserve too small")
    text += b" " * (start - 8 - len(text))
    chunks = [MAGIC, struct.pack("<I", len(text)), text]
    for array in stored:
        chunks += [array.tobytes(order="C"), b"\0" * _pad(array.nbytes)]
    return b"".join(chunks)


def read_header(payload: bytes) -> dict:
    """The JSON header of a payload (version, meta, arrays with dtype/shape/offset/nbytes)."""
    view = memoryview(payload)
    if len(view) < 8 or bytes(view[:4]) != MAGIC:
        raise ValueError("payload is not a crosslens payload (bad magic bytes)")
    (length,) = struct.unpack("<I", view[4:8])
    return json.loads(bytes(view[8 : 8 + length]).decode("utf-8"))


def unpack(payload: bytes, dequantize: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, meta)`` from :func:`pack`'s bytes. Quantized arrays come back as float32
    (``min + q * scale``) unless ``dequantize=False``. Arrays are read-only views when not
    dequantized."""
    header = read_header(payload)
    if header.get("version") != VERSION:
        raise ValueError(f"unsupported payload version {header.get('version')!r}")
    arrays = {}
    for name, entry in header["arrays"].items():
        dtype = np.dtype(entry["dtype"]).newbyteorder("<")
        count = int(np.prod(entry["shape"], dtype=np.int64))
        array = np.frombuffer(payload, dtype=dtype, count=count, offset=entry["offset"]).reshape(entry["shape"])
        if dequantize and "scale" in entry:
            array = (entry["min"] + array.astype(np.float64) * entry["scale"]).astype(np.float32)
        arrays[name] = array
    return arrays, header["meta"]

