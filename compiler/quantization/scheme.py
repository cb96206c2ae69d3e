"""The int8 scheme of the TFLite quantization specification, as quantization parameters.

  activations  int8, asymmetric, per tensor: [lo, hi] widened to hold 0 (so 0 is exact: padding,
               relu), scale = (hi - lo) / 255, zero point = -128 - lo / scale rounded;
  weights      int8, symmetric, per output channel (axis 0 of conv and fully_connected weights):
               zero point 0, codes in [-127, 127] (never -128, so -w is representable too),
               scale = max |w| / 127 per channel;
  bias         int32, zero point 0, per channel at scale input_scale * weight_scale, so it adds
               straight into the int32 accumulator.
With --weights int4 (or auto) a layer's weights may instead be 4-bit: symmetric per output channel, codes
in [-8, 7], steps and codes chosen on the calibration data (weights4.py); activations stay int8.
Scales are float32 values (the kernels and onnxruntime compute with float32 scales): rounding them
here keeps the interpreter, the C and an exported QDQ model on the same numbers.
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.interp import to_stored
from edgecc.ir.types import Quant, TensorType

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127
WEIGHT4_QMIN, WEIGHT4_QMAX = -8, 7  # 4-bit weights (--weights int4): compiler/quantization/weights4.py
BIAS_LIMIT = 2.0 ** 30  # |bias code| bound: leaves room to fold the input zero point in (kernels do)


def f32(x) -> float:
    return float(np.float32(x))


def activation_quant(lo: float, hi: float) -> Quant:
    """Per-tensor asymmetric int8 parameters covering [lo, hi] (and 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:  # a tensor that is always 0: any step will do
        hi = lo + 1.0
    scale = f32((hi - lo) / (QMAX - QMIN))
    zero = QMIN - lo / scale
    zp = int(np.clip(np.rint(zero), QMIN, QMAX))
    return Quant((scale,), (zp,))


def channel_scales(w: np.ndarray, axis: int = 0) -> np.ndarray:
    """Symmetric per-channel weight scales along `axis` (float32-exact values in float64)."""
    others = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w.astype(np.float64)), axis=others) if others else np.abs(w.astype(np.float64))
    scale = np.where(amax > 0, amax / WEIGHT_QMAX, 1.0)
    return scale.astype(np.float32).astype(np.float64)


def weights_and_bias(w: np.ndarray, bias, input_scale: float):
    """Per-output-channel int8 weights (axis 0) and the int32 bias at input_scale * weight_scale.

    Returns (weight codes, weight Quant, bias codes or None, bias Quant or None). A channel whose bias
    would not fit the int32 accumulator at that scale gets a coarser weight scale (its weights are
    tiny next to its bias, so they lose nothing that matters)."""
    scale = _bias_room(channel_scales(w, 0), bias, input_scale, BIAS_LIMIT)
    codes = np.clip(np.rint(w / _along0(scale, w.ndim)), -WEIGHT_QMAX, WEIGHT_QMAX)
    return (codes.astype(np.int8), _per_channel(scale)) + _bias(bias, input_scale, scale)


def weights4_and_bias(w: np.ndarray, chosen, bias, input_scale: float):
    """4-bit weights (codes [-8, 7], steps and bias shift as compiler/quantization/weights4.py chose them for the
    float weights w) and the int32 bias at input_scale * step, the shift included; as weights_and_bias. The
    kernels take a 4-bit layer's accumulator 16 times (backends/c/kernels/int4.py): the bias is bounded
    16 times tighter, and a channel that needs a coarser step for it is rounded again at that step."""
    shift = np.asarray(chosen.bias_shift, np.float64)
    b = None if bias is None and not np.any(shift) else (0.0 if bias is None else np.asarray(bias, np.float64)) + shift
    scale = np.asarray(chosen.scales, np.float64)
    wide = _bias_room(scale, b, input_scale, BIAS_LIMIT / 16)
    codes = np.asarray(chosen.codes, np.int64)
    if np.any(wide != scale):
        again = np.clip(np.rint(w / _along0(wide, w.ndim)), WEIGHT4_QMIN, WEIGHT4_QMAX)
        codes = np.where(_along0(wide != scale, w.ndim), again, codes)
    return (codes.astype(np.int8), _per_channel(wide)) + _bias(b, input_scale, wide)


def _along0(v: np.ndarray, ndim: int) -> np.ndarray:
    return np.asarray(v).reshape((-1,) + (1,) * (ndim - 1))


def _per_channel(scale: np.ndarray) -> Quant:
    return Quant(tuple(float(s) for s in scale), (0,) * len(scale), 0)


def _bias_room(scale: np.ndarray, bias, input_scale: float, limit: float) -> np.ndarray:
    """The weight scales, coarsened where the bias at input_scale * scale would exceed `limit` codes."""
    if bias is None:
        return scale
    need = np.abs(np.asarray(bias, np.float64).reshape(-1)) / (input_scale * limit)
    return np.maximum(scale, need).astype(np.float32).astype(np.float64)


def _bias(bias, input_scale: float, scale: np.ndarray) -> tuple:
    """(int32 codes, Quant) of the bias at input_scale * scale per channel, or (None, None)."""
    if bias is None:
        return None, None
    b = np.broadcast_to(np.asarray(bias, np.float64).reshape(-1), scale.shape)
    bscale = (np.float32(input_scale) * scale.astype(np.float32)).astype(np.float32).astype(np.float64)
    return np.rint(b / bscale).astype(np.int64).astype(np.int32), _per_channel(bscale)


def symmetric_tensor(data: np.ndarray):
    """Per-tensor symmetric int8 codes and Quant (constant matrix operands of matmul)."""
    amax = float(np.max(np.abs(data))) if data.size else 0.0
    q = Quant((f32(amax / WEIGHT_QMAX) if amax > 0 else 1.0,), (0,))
    return constant_codes(data, q), q


def asymmetric_tensor(data: np.ndarray):
    """Per-tensor asymmetric int8 codes and Quant over the data's own range (constant operands of
    elementwise ops)."""
    q = activation_quant(float(np.min(data)) if data.size else 0.0, float(np.max(data)) if data.size else 0.0)
    return constant_codes(data, q), q


def constant_codes(data: np.ndarray, q: Quant, dtype: str = "i8") -> np.ndarray:
    """data stored in type (dtype, q): round half to even, add the zero point, saturate."""
    return to_stored(TensorType(tuple(np.shape(data)), dtype, q), np.asarray(data, np.float64))
