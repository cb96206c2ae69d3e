"""IR -> ONNX in TensorRT's explicit-quantization form (`--target tensorrt`, model.trt.onnx).

TensorRT runs a layer in int8 where QuantizeLinear/DequantizeLinear pairs sit on its inputs and fuses
the pair, the layer, its bias and activation into one kernel. Its rules: Q/DQ symmetric (zero point
0), weights per output channel on axis 0, activations per tensor. So, unlike the QDQ export
(__init__.py), which rounds every quantized value:

  * every value is a float tensor between ops; a fused activation is a node after its op;
  * a conv or fully_connected layer reading an int8 activation the source quantized with a zero point
    z (scale s) reads it shifted: Add(s z), then a Q/DQ pair of scale s and zero point 0, whose codes
    are round(x / s) + z, the source's own, so nothing is lost; the layer's bias takes off s z times
    the sum of each output channel's weights, and its padding, which must hold real 0 (s z once
    shifted), becomes an explicit Pad of that value (TensorRT's Q/DQ propagation carries the
    quantization through the Pad to the convolution: expected, not checked here);
  * the other quantized inputs of conv, conv_transpose, gemm, matmul and fully_connected and of
    residual adds get a symmetric Q/DQ pair (one per value, shared by its readers): what TensorRT
    fuses into its int8 kernels;
  * every other op reads a quantized input on the source's own grid, computed in float:
    clip(round(x / s), lo - z, hi - z) * s (Div, Round, Clip, Mul, which TensorRT fuses into one
    point-wise kernel), so the rounding and saturation the source model applies there stay exact
    (measured: with no rounding there, a QDQ model calibrated on narrow ranges moved by a quarter of
    its output range; with symmetric Q/DQ there too, the MobileNetV3 block moved by 4 %, and by
    3.6 % with symmetric pairs on its padded convs' inputs, 0.7 % with the shifted reads);
  * where the symmetric pair reads an activation the source quantized with a zero point, it is
    re-derived symmetric: scale
    max(|lo|, |hi|) / 127 for its real range [lo, hi] (zero point 0 keeps its scale), with a Clip to
    [lo, hi] before the QuantizeLinear, so what the source saturated still saturates (TensorRT fuses
    the clip as the producer's activation); the step grows by new / old, the quantization noise by
    20 log10(new / old) dB, listed per tensor (`changes`);
  * weights: int8 codes with zero point 0 stay int8 behind a DequantizeLinear (per axis 0 for a
    conv, the output axis of a matrix product); biases and other quantized constants become float;
  * quantize / dequantize ops inside the graph vanish (their values are float here);
  * the model's interface keeps its names and dtypes: an int8 input is turned into reals by Cast,
    Sub(zero point), Mul(scale), an int8 output back into codes by Div, Add, Round, Clip, Cast, so
    no Q/DQ with a zero point is left anywhere.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import Value
from edgecc.ir.types import TensorType

from . import _Writer, checked_model
from .ops import OPSET

QDQ_INPUT_KINDS = ("conv", "conv_transpose", "gemm", "matmul", "fully_connected")
INT_RANGES = {"i8": (-128, 127), "u8": (0, 255)}


def symmetric_scale(v) -> tuple[float, float]:
    """(the symmetric int8 scale of a per-tensor quantized value, the source's scale)."""
    q = v.type.quant
    s, z = float(q.scale[0]), int(q.zero_point[0])
    if z == 0 and v.type.dtype == "i8":
        return s, s
    lo, hi = INT_RANGES.get(v.type.dtype, (None, None))
    if lo is None:
        raise EdgeccError(f"a {v.type.dtype} activation has no int8 form", node=v.name)
    bound = max(abs(s * (lo - z)), abs(s * (hi - z)))
    return float(np.float32(bound / 127.0)), s


class TensorRTWriter(_Writer):
    def __init__(self, graph):
        super().__init__(graph)
        self.floats: dict = {}   # IR value -> name of its float tensor
        self.qdq: dict = {}      # IR value -> name of its Q/DQ'd tensor
        self.changes: list = []  # per re-derived activation: name, source scale and zero point, new scale, dB
        self.reading = None      # how the op being written reads quantized inputs: "int8" (Q/DQ) or "grid"
        self.grid: dict = {}     # IR value -> name of its tensor on the source's grid (exact rounding in float)
        self.current = None      # the IR op being written (None: the interface's conversions)
        self.origins: list = []  # (ONNX node name, op type, IR op or None), in order
        self.opset = OPSET
        self.overrides: dict = {}  # IR value -> tensor name, for the op being written (a shifted read)
        self.shifted: dict = {}    # IR value -> name of its zero-point-shifted Q/DQ'd tensor
        self.readers = {}
        for op in graph.ops:
            for v in op.operands:
                if v is not None:
                    self.readers.setdefault(v, []).append(op)

    def node(self, op_type: str, inputs: list, outputs: list, name: str = "", **attrs) -> None:
        super().node(op_type, inputs, outputs, name, **attrs)
        self.origins.append((self.nodes[-1].name, op_type, self.current))

    # ---- values --------------------------------------------------------------------------
    def real(self, v) -> str:
        """v's float tensor; while an op that TensorRT runs in int8 is written, through its Q/DQ pair."""
        if v in self.overrides:
            return self.overrides[v]
        if self.reading and v is not None and not v.is_const:
            return self.quantized_input(v) if self.reading == "int8" else self.on_source_grid(v)
        return self._plain(v)

    def _plain(self, v) -> str:
        if v is None:
            return ""
        if v in self.floats:
            return self.floats[v]
        if v.is_const:
            self.floats[v] = self._const(v)
            return self.floats[v]
        if v.type.quant is not None and v in self.graph.inputs:
            self.floats[v] = self._input_reals(v)
            return self.floats[v]
        return v.name

    def _const(self, v) -> str:
        q = v.type.quant
        if q is None:
            return self.init(v.name, v.data, exact=True)
        zp = np.asarray(q.zero_point)
        weights = v.type.dtype == "i8" and not zp.any() and (q.axis in (None, 0) or len(q.scale) == 1)
        if weights and any(op.kind in QDQ_INPUT_KINDS and op.operands[1] is v for op in self.readers.get(v, [])):
            codes = self.init(v.name, v.data, exact=True)
            scale = np.asarray(q.scale, np.float32) if q.axis is not None else np.float32(q.scale[0])
            out = self.name(f"{v.name}_dequantized")
            attrs = {"axis": 0} if q.axis is not None else {}
            self.node("DequantizeLinear", [codes, self.init(f"{v.name}_scale", scale),
                                           self.init(f"{v.name}_zero_point", np.zeros(np.shape(scale), np.int8))],
                      [out], f"{v.name}_DequantizeLinear", **attrs)
            return out
        shape = [1] * v.type.rank
        if q.axis is not None:
            shape[q.axis] = -1
        scale = np.asarray(q.scale, np.float64).reshape(shape if q.axis is not None else [])
        zero = np.asarray(q.zero_point, np.float64).reshape(shape if q.axis is not None else [])
        return self.init(v.name, ((v.data.astype(np.float64) - zero) * scale).astype(np.float32), exact=True)

    def _input_reals(self, v) -> str:
        current, self.current = self.current, None
        try:
            return self._input_conversion(v)
        finally:
            self.current = current

    def _input_conversion(self, v) -> str:
        s, z = float(v.type.quant.scale[0]), int(v.type.quant.zero_point[0])
        cast = self.name(f"{v.name}_float")
        self.node("Cast", [v.name], [cast], f"{v.name}_Cast", to=1)
        if z:
            centred = self.name(f"{v.name}_centred")
            self.node("Sub", [cast, self.init(f"{v.name}_zero_point", np.float32(z))], [centred], f"{v.name}_Sub")
            cast = centred
        out = self.name(f"{v.name}_real")
        self.node("Mul", [cast, self.init(f"{v.name}_scale", np.float32(s))], [out], f"{v.name}_Mul")
        return out

    def quantized_input(self, v) -> str:
        """v's float tensor through a symmetric Q/DQ pair when v is a quantized run-time value."""
        if v is None or v.is_const or v.type.quant is None or v.type.quant.axis is not None:
            return self._plain(v)
        if v not in self.qdq:
            scale, source = symmetric_scale(v)
            if scale != source or int(v.type.quant.zero_point[0]) != 0:
                self.changes.append(dict(name=v.name, source_scale=source,
                                         source_zero_point=int(v.type.quant.zero_point[0]), scale=scale,
                                         sqnr_change_db=round(20 * math.log10(source / scale), 3)))
            s = self.init(f"{v.name}_trt_scale", np.float32(scale))
            z = self.init(f"{v.name}_trt_zero_point", np.int8(0))
            qd, dq = self.name(f"{v.name}_quantized"), self.name(f"{v.name}_dq")
            x = self._plain(v)
            if int(v.type.quant.zero_point[0]) != 0 or v.type.dtype != "i8":
                x = self._source_range(v, x)
            self.node("QuantizeLinear", [x, s, z], [qd], f"{v.name}_QuantizeLinear")
            self.node("DequantizeLinear", [qd, s, z], [dq], f"{v.name}_DequantizeLinear")
            self.qdq[v] = dq
        return self.qdq[v]

    def shifted_input(self, v) -> str:
        """v + s z through a symmetric Q/DQ pair of the source's own scale s: round((x + s z) / s) =
        round(x / s) + z, so the int8 codes are the source's exactly, the zero point moved into the
        tensor; the reader takes s z x (the sum of its weights) off its bias (see _shifted_op)."""
        if v not in self.shifted:
            s, z = float(v.type.quant.scale[0]), int(v.type.quant.zero_point[0])
            moved, qd, dq = (self.name(f"{v.name}_{k}") for k in ("shifted", "quantized", "dq"))
            self.node("Add", [self._plain(v), self.init(f"{v.name}_shift", np.float32(s * z))], [moved],
                      f"{v.name}_shift")
            scale, zero = self.init(f"{v.name}_trt_scale", np.float32(s)), self.init(f"{v.name}_trt_zero_point", np.int8(0))
            self.node("QuantizeLinear", [moved, scale, zero], [qd], f"{v.name}_QuantizeLinear")
            self.node("DequantizeLinear", [qd, scale, zero], [dq], f"{v.name}_DequantizeLinear")
            self.shifted[v] = dq
        return self.shifted[v]

    def _shiftable(self, op) -> bool:
        """A conv or fully_connected layer without padding, with constant weights and bias, reading an int8
        activation with a zero point: its input can take the shifted read exactly (no padding, so every
        tap reads a shifted value)."""
        if op.kind not in ("conv", "fully_connected"):
            return False
        x, w = op.operands[:2]
        b = op.operands[2] if len(op.operands) > 2 else None
        q = x.type.quant
        return (not x.is_const and w.is_const and (b is None or b.is_const) and q is not None and q.axis is None
                and x.type.dtype == "i8" and int(q.zero_point[0]) != 0 and not op.attrs.get("channels_last"))

    def _shifted_op(self, op) -> None:
        """Write op reading its input shifted (shifted_input), its bias less s z x sum of each output
        channel's weights (the real weights the DequantizeLinear gives)."""
        x, w = op.operands[:2]
        b = op.operands[2] if len(op.operands) > 2 else None
        if b is None:  # a bias to correct: a zero one, on a copy of the op (the graph stays as it is)
            b = Value(f"{op.name or op.result.name}_bias", TensorType((w.type.shape[0],), "f32"),
                      np.zeros(w.type.shape[0], np.float32))
            op = copy.copy(op)
            op.operands = [x, w, b]
        s, z = float(x.type.quant.scale[0]), int(x.type.quant.zero_point[0])
        wq = w.type.quant
        w_real = w.data.astype(np.float64)
        if wq is not None:
            shape = [1] * w.type.rank
            if wq.axis is not None:
                shape[wq.axis] = -1
            w_real = (w_real - np.asarray(wq.zero_point, np.float64).reshape(shape)) * \
                np.asarray(wq.scale, np.float64).reshape(shape)
        b_real = b.data.astype(np.float64)
        if b.type.quant is not None:
            bq = b.type.quant
            b_real = (b_real - np.asarray(bq.zero_point, np.float64)) * np.asarray(bq.scale, np.float64)
        corrected = (b_real - s * z * w_real.reshape(w_real.shape[0], -1).sum(axis=1)).astype(np.float32)
        shifted = self.shifted_input(x)
        pads = list(op.attrs.get("pads", []))
        if any(pads):  # the padding must hold real 0, which is s z in the shifted tensor: an explicit Pad
            nd = len(pads) // 2
            padded = self.name(f"{x.name}_padded")
            self.node("Pad", [shifted, self.init(f"{x.name}_pads", np.asarray([0, 0] + pads[:nd] + [0, 0] + pads[nd:], np.int64)),
                              self.init(f"{x.name}_pad_value", np.float32(s * z))], [padded], f"{op.name}_Pad", mode="constant")
            shifted = padded
            op = copy.copy(op)
            op.attrs = dict(op.attrs, pads=[0] * len(pads))
        self.overrides = {x: shifted, b: self.init(f"{b.name}_shifted", corrected)}
        self.reading = "int8"
        try:
            _Writer.op(self, op)
        finally:
            self.reading, self.overrides = None, {}

    def on_source_grid(self, v) -> str:
        """v's float tensor rounded and saturated exactly as the source quantized it, in float:
        clip(round(x / s), lo - z, hi - z) * s, which is dequantize(quantize(x)) with no zero point
        left in a Q/DQ node. For the inputs of ops TensorRT runs in float anyway (softmax, sigmoid,
        element-wise products, pooling and data movement), where a symmetric re-derivation would
        change the numbers for nothing."""
        if v is None or v.is_const or v.type.quant is None or v.type.quant.axis is not None:
            return self._plain(v)
        if v not in self.grid:
            lo, hi = INT_RANGES[v.type.dtype]
            s, z = float(v.type.quant.scale[0]), int(v.type.quant.zero_point[0])
            steps, rounded, clamped, out = (self.name(f"{v.name}_{k}") for k in ("steps", "rounded", "clamped", "grid"))
            self.node("Div", [self._plain(v), self.init(f"{v.name}_grid_scale", np.float32(s))], [steps],
                      f"{v.name}_grid_Div")
            self.node("Round", [steps], [rounded], f"{v.name}_grid_Round")
            self.node("Clip", [rounded, self.init(f"{v.name}_grid_min", np.float32(lo - z)),
                               self.init(f"{v.name}_grid_max", np.float32(hi - z))], [clamped], f"{v.name}_grid_Clip")
            self.node("Mul", [clamped, self.init(f"{v.name}_grid_step", np.float32(s))], [out], f"{v.name}_grid_Mul")
            self.grid[v] = out
        return self.grid[v]

    def _source_range(self, v, x: str) -> str:
        """x clamped to the real range the source's asymmetric quantization allowed: the symmetric
        range is wider on one side, and a model that saturates there must keep doing so."""
        lo, hi = INT_RANGES[v.type.dtype]
        s, z = float(v.type.quant.scale[0]), int(v.type.quant.zero_point[0])
        out = self.name(f"{v.name}_source_range")
        self.node("Clip", [x, self.init(f"{v.name}_min", np.float32(s * (lo - z))),
                           self.init(f"{v.name}_max", np.float32(s * (hi - z)))], [out], f"{v.name}_Clip")
        return out

    def result(self, v, write) -> None:
        if v.type.quant is None or v not in self.graph.outputs:
            write(v.name)
            self.floats[v] = v.name
            return
        real = self.name(f"{v.name}_real")
        write(real)
        self._output_codes(v, real)

    def _output_codes(self, v, real: str) -> None:
        """Codes of a quantized graph output from its reals: round(x / s) + z, clamped, cast."""
        current, self.current = self.current, None
        try:
            self._codes(v, real)
        finally:
            self.current = current

    def _codes(self, v, real: str) -> None:
        s, z = float(v.type.quant.scale[0]), int(v.type.quant.zero_point[0])
        lo, hi = INT_RANGES[v.type.dtype]
        scaled, rounded, shifted, clamped = (self.name(f"{v.name}_{k}") for k in ("scaled", "rounded", "shifted",
                                                                                   "clamped"))
        self.node("Div", [real, self.init(f"{v.name}_scale", np.float32(s))], [scaled], f"{v.name}_Div")
        self.node("Round", [scaled], [rounded], f"{v.name}_Round")
        self.node("Add", [rounded, self.init(f"{v.name}_zero_point", np.float32(z))], [shifted], f"{v.name}_Add")
        self.node("Clip", [shifted, self.init(f"{v.name}_lo", np.float32(lo)), self.init(f"{v.name}_hi", np.float32(hi))],
                  [clamped], f"{v.name}_Clip")
        to = 3 if v.type.dtype == "i8" else 2
        self.node("Cast", [clamped], [v.name], f"{v.name}_Cast", to=to)

    # ---- ops -----------------------------------------------------------------------------
    def op(self, op) -> None:
        self.current = op
        try:
            self._op(op)
        finally:
            self.current = None

    def _op(self, op) -> None:
        if op.kind == "gelu":  # ONNX Gelu (opset 20, which TensorRT 10 reads): the model is written at 20
            self.opset = max(self.opset, 20)
            x = self.on_source_grid(op.operands[0])
            self._activated(op, lambda out: self.node("Gelu", [x], [out], op.name,
                                                      approximate=op.attrs.get("approximate", "none")))
            return
        if op.kind in ("quantize", "dequantize"):
            # a dequantize reads the quantized value as rounded and saturated: through its Q/DQ pair
            x, y = op.operands[0], op.result
            real = self.on_source_grid(x) if op.kind == "dequantize" else self.real(x)
            if y in self.graph.outputs:
                if y.type.quant is not None:
                    self._output_codes(y, real)
                else:
                    self.node("Identity", [real], [y.name], op.name)
            else:
                self.floats[y] = real
            return
        if self._shiftable(op):
            self._shifted_op(op)
            return
        start = len(self.nodes)
        runtime = [v for v in op.operands if v is not None and not v.is_const]
        fused = op.kind in QDQ_INPUT_KINDS or (op.kind == "add" and len(runtime) == 2)
        self.reading = "int8" if fused else "grid"
        try:
            super().op(op)
        finally:
            self.reading = None
        if len(op.results) > 1:  # the QDQ writer rounds each quantized result: here they stay float
            rounding = {r.name: r for r in op.results if r.type.quant is not None}
            added, self.nodes = self.nodes[start:], self.nodes[:start]
            for n in added:
                r = rounding.get(n.output[0]) if n.op_type == "QuantizeLinear" else None
                if r is None:
                    self.nodes.append(n)
                elif r in self.graph.outputs:
                    self._output_codes(r, n.input[0])
                else:
                    self.node("Identity", [n.input[0]], [r.name], f"{r.name}_Identity")
            for r in op.results:
                self.floats[r] = r.name


def _used_initializers(nodes, inits) -> list:
    used = {name for n in nodes for name in n.input}
    return [t for t in inits if t.name in used]


def to_tensorrt_onnx(graph):
    """(the graph as an onnx.ModelProto in TensorRT's explicit-quantization form, the re-derived
    activations: a list of {name, source_scale, source_zero_point, scale, sqnr_change_db}, the
    origins of its nodes: (node name, op type, IR op or None))."""
    w = TensorRTWriter(graph)
    for op in graph.ops:
        w.op(op)
    model = checked_model(graph, w.nodes, _used_initializers(w.nodes, w.inits), w.opset, full_check=True)
    return model, w.changes, w.origins
