"""Quantization arithmetic the integer kernels share, done in Python at compile time.

The IR's meaning of a quantized op is "dequantize, compute in real numbers, quantize (round half to
even, saturate)". The kernels reproduce onnxruntime bit for bit, so the constants here are computed
the way onnxruntime computes them, in float32 and in the same order:
  - accumulator requantization (conv, matmul, global average pool): y = rint(float(acc) * m) + zp with
    m = float32(float32(in_scale * w_scale) / out_scale), clamped to [qmin - zp, qmax - zp] first;
    measured against onnxruntime's QLinearConv on random convs it is exact, where the TFLite/gemmlowp
    int32 multiplier + shift (double rounding) was 1 LSB off on 0.3 % of outputs;
  - quantize: rint(x / scale) + zp (a division, as onnxruntime does: x * (1 / scale) differs);
  - element maps of 8-bit tensors (relu, sigmoid, a requantizing copy, ...) are 256-entry tables built
    here from the float32 dequantized value, the function, and the float32 quantize.
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, Unsupported, c_float

F32 = np.float32
QRANGE = {"i8": (-128, 127), "u8": (0, 255), "i16": (-32768, 32767), "i32": (-2**31, 2**31 - 1)}


def qparams(v):
    """(scale float32 array, zero point int64 array) of a value's quant; identity when it has none."""
    q = v.type.quant
    if q is None:
        return np.ones(1, F32), np.zeros(1, np.int64)
    return np.asarray(q.scale, F32), np.asarray(q.zero_point, np.int64)


def per_tensor(v, what: str):
    """(scale, zero point) of a per-tensor quantized value; per-axis activations are not supported."""
    q = v.type.quant
    if q is not None and q.per_axis and len(q.scale) > 1:
        raise Unsupported(f"{what}: per-axis quantization of %{v.name}")
    s, z = qparams(v)
    return F32(s[0]), int(z[0])


def qrange(dtype: str):
    if dtype not in QRANGE:
        raise Unsupported(f"integer kernels take i8/u8/i16/i32 tensors, not {dtype}")
    return QRANGE[dtype]


def quantize_f32(x, scale, zp, dtype: str) -> np.ndarray:
    """Quantize float32 values the way onnxruntime does: rint(x / scale) + zp, saturated."""
    lo, hi = qrange(dtype)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        v = np.asarray(x, F32) / F32(scale)
        v = np.clip(v, F32(lo - zp), F32(hi - zp))
    return (np.rint(v).astype(np.int64) + zp).astype(np.int64)


def dequantize_f32(q, scale, zp) -> np.ndarray:
    return (np.asarray(q, np.int64) - zp).astype(F32) * F32(scale)


def lookup_table(fn, x, y) -> np.ndarray:
    """table[i] = quantize_y(fn(dequantize_x(code i))) for the 256 codes of an 8-bit operand x, indexed
    by the stored byte as unsigned (so int8 code -1 is entry 255). fn maps float64 to float64."""
    if x.type.dtype not in ("i8", "u8") or y.type.dtype not in ("i8", "u8"):
        raise Unsupported("element tables need 8-bit operand and result")
    sx, zx = per_tensor(x, "table")
    sy, zy = per_tensor(y, "table")
    codes = np.arange(256, dtype=np.int64)
    stored = codes - 256 * (codes >= 128) if x.type.dtype == "i8" else codes
    real = dequantize_f32(stored, sx, zx)
    with np.errstate(all="ignore"):
        fx = np.asarray(fn(real.astype(np.float64)), np.float64).astype(F32)
    return quantize_f32(fx, sy, zy, y.type.dtype).astype(y.type.np_dtype)


def requant_table(x, y) -> np.ndarray:
    """The table that re-expresses x's stored values in y's quantization (dequantize, quantize)."""
    return lookup_table(lambda r: r, x, y)


def activation_bounds(op, y) -> tuple:
    """Stored-value bounds [lo, hi] of the result after the op's fused activation (relu: the zero point,
    relu6/clip: the quantized bounds), within the type's range."""
    lo, hi = qrange(y.type.dtype)
    act = op.attrs.get("activation", "none")
    if act == "none":
        return lo, hi
    if y.type.quant is None:
        raise Unsupported(f"fused {act} on an unquantized integer result")
    sy, zy = per_tensor(y, op.kind)
    params = list(op.attrs.get("act_params", []))
    if act == "relu":
        a, b = 0.0, None
    elif act == "relu6":
        a, b = 0.0, 6.0
    elif act == "clip":
        a, b = (params + [None, None])[:2]
    else:
        raise Unsupported(f"fused activation {act} on a quantized {op.kind}")
    # clip then quantize == quantize then clamp to the quantized bounds (quantize is monotone)
    if a is not None and np.isfinite(a):
        lo = max(lo, int(quantize_f32([a], sy, zy, y.type.dtype)[0]))
    if b is not None and np.isfinite(b):
        hi = min(hi, int(quantize_f32([b], sy, zy, y.type.dtype)[0]))
    return lo, hi


def output_vars(op, y, scale, prefix: str = "") -> dict:
    """Template variables of the requantizing store: ctype, zero point, clamp bounds and the multiplier
    (a literal when one for all channels, else the name of a per-channel table `<fn>_scale`)."""
    lo, hi = activation_bounds(op, y)
    _, zy = per_tensor(y, op.kind)
    scale = np.asarray(scale, F32).reshape(-1)
    return {prefix + "out_ctype": CTYPES[y.type.dtype], prefix + "zp": zy,
            prefix + "lo": c_float(lo - zy), prefix + "hi": c_float(hi - zy),
            prefix + "ilo": lo, prefix + "ihi": hi,
            prefix + "scale": c_float(scale[0]) if scale.size == 1 else None}


def accumulator_bound(bias, weights, x_dtype: str, zx: int) -> np.ndarray:
    """Per output channel, the largest |acc| a dot product of `weights` [M][K] (zero points subtracted) with
    any input (x - zx) can reach, bias included."""
    lo, hi = qrange(x_dtype)
    reach = max(abs(lo - zx), abs(hi - zx))
    w = np.abs(np.asarray(weights, np.int64)).reshape(len(weights), -1).sum(axis=1)
    return np.abs(np.asarray(bias, np.int64)) + reach * w


def rounds_in_int32(bound, scale) -> bool:
    """Can every accumulator be scaled and converted to int32 before it is clamped (see q_macros.store)?"""
    scaled = np.asarray(bound, np.float64) * np.abs(np.asarray(scale, np.float64))
    return bool(np.all(scaled < 2.0 ** 30))


def bias_values(bias, acc_scale, n: int) -> np.ndarray:
    """int64 bias in accumulator units (scale in_scale * w_scale, per channel). onnxruntime adds the
    int32 bias as it is; a bias stored at another scale is rescaled here, once."""
    if bias is None:
        return np.zeros(n, np.int64)
    if not bias.is_const:
        raise Unsupported("a bias computed at run time")
    data = np.asarray(bias.data).reshape(-1)
    if bias.type.dtype == "f32":
        return np.rint(data.astype(np.float64) / np.asarray(acc_scale, np.float64)).astype(np.int64)
    b = data.astype(np.int64)
    if bias.type.quant is not None:
        sb, zb = qparams(bias)
        want = np.broadcast_to(np.asarray(acc_scale, np.float64), (n,))
        have = np.broadcast_to(sb.astype(np.float64), (n,))
        b = b - zb
        if np.any(np.abs(have / want - 1) > 1e-4):
            b = np.rint(b * have / want).astype(np.int64)
    return np.broadcast_to(b, (n,)).copy()


def check_int32(values, what: str) -> np.ndarray:
    values = np.asarray(values, np.int64)
    if values.size and (values.min() < -2**31 or values.max() >= 2**31):
        raise Unsupported(f"{what} overflows int32")
    return values.astype(np.int32)
