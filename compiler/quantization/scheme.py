"""The int8 scheme of the TFLite quantization specification, as quantization parameters.

  activations  int8, asymmetric, per tensor: [lo, hi] widened to hold 0 (so 0 is exact: padding,
               relu), scale = (hi - lo) / 255, zero point = -128 - lo / scale rounded;
  weights      int8, symmetric, per output channel (axis 0 of conv and fully_connected weights):
               zero point 0, codes in [-127, 127] (never -128, so -w is representable too),
               scale = max |w| / 127 per channel;
  bias         int32, zero point 0, per channel at scale input_scale * weight_scale, so it adds
               straight into the int32 accumulator.
Scales are float32 values (the kernels and onnxruntime compute with float32 scales): rounding them
here keeps the interpreter, the C and an exported QDQ model on the same numbers.
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.interp import to_stored
from edgecc.ir.types import Quant, TensorType

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127
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
    scale = channel_scales(w, 0)
    if bias is not None:
        b = np.asarray(bias, np.float64).reshape(-1)
        need = np.abs(b) / (input_scale * BIAS_LIMIT)
        scale = np.maximum(scale, need).astype(np.float32).astype(np.float64)
    wq = Quant(tuple(float(s) for s in scale), (0,) * len(scale), 0)
    codes = np.clip(np.rint(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -WEIGHT_QMAX, WEIGHT_QMAX)
    if bias is None:
        return codes.astype(np.int8), wq, None, None
    bscale = (np.float32(input_scale) * scale.astype(np.float32)).astype(np.float32).astype(np.float64)
    bq = Quant(tuple(float(s) for s in bscale), (0,) * len(bscale), 0)
    bcodes = np.rint(b / bscale).astype(np.int64)
    return codes.astype(np.int8), wq, bcodes.astype(np.int32), bq


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
