"""ONNX export: an IR graph (a quantized one, typically) -> a QDQ ONNX model that onnxruntime runs
and Netron shows (`edgecc --quantize int8 --emit onnx`).

With compiler/frontend, the only part of edgecc that imports onnx. The IR keeps quantization on
types; QDQ ONNX keeps it in QuantizeLinear / DequantizeLinear nodes around float ops, so:

  * a quantized constant (int8 weights, int32 bias) is an integer initializer read through a
    DequantizeLinear (per axis where its quantization is); 4-bit weights are an INT4 initializer read
    by onnxruntime's com.microsoft DequantizeLinear (the opset's takes INT4 from 21 on only);
  * an op with a quantized result computes in float and its result goes through QuantizeLinear,
    whose output carries the IR value's name; readers see it through one DequantizeLinear;
  * quantize / dequantize ops are QuantizeLinear / DequantizeLinear themselves;
  * a fused activation is a node after its op; fully_connected is Gemm (transB = 1) on 2-D
    inputs, MatMul with the transposed weights plus Add otherwise;
  * inputs and outputs keep their names and dtypes (int8 codes with `--io int8`).

This is the ONNX QDQ reading of the graph, the same numbers the IR means (ir/ops.py), so
onnxruntime's outputs are the interpreter's within its rounding of requantization. Graphs in
channels-last layout (after the layout pass) are not written: export before lowering.
Opset 17 (per-axis QDQ needs 13, HardSwish 14, LayerNormalization 17).
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import fresh_name

from .ops import ACTIVATIONS, ONNX_OPS, OPSET

IR_VERSION = 8  # what onnxruntime releases of the last years all read
CONTRIB = "com.microsoft"  # onnxruntime's domain: its DequantizeLinear reads 4-bit weights at opset 17


class _Writer:
    """Nodes and initializers of one ONNX graph, with unique tensor names."""

    def __init__(self, graph):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.graph = graph
        self.nodes, self.inits = [], []
        self.taken = {v.name for v in graph.values()}
        self.views: dict = {}  # quantized Value -> name of its dequantized (float) tensor

    def name(self, base: str) -> str:
        return fresh_name(base, self.taken)

    def init(self, base: str, data: np.ndarray, exact: bool = False, dtype: str = "") -> str:
        """An initializer; dtype "i4": the values as ONNX's INT4 (packed two a byte)."""
        name = base if exact else self.name(base)
        data = np.ascontiguousarray(data)
        if dtype == "i4":
            import ml_dtypes

            data = data.astype(ml_dtypes.int4)
        self.inits.append(self.numpy_helper.from_array(data, name))
        return name

    def node(self, op_type: str, inputs: list, outputs: list, name: str = "", **attrs) -> None:
        self.nodes.append(self.helper.make_node(op_type, inputs, outputs, name=self.name(name or op_type), **attrs))

    def qparams(self, v) -> tuple:
        """(scale, zero point) initializers of v's quantization, and the axis attribute."""
        q = v.type.quant
        zp_dtype = v.type.np_dtype
        if q.axis is None:
            scale, zp = np.float32(q.scale[0]), np.asarray(q.zero_point[0], zp_dtype)
        else:
            scale, zp = np.asarray(q.scale, np.float32), np.asarray(q.zero_point, zp_dtype)
        attrs = {} if q.axis is None else {"axis": q.axis}
        return (self.init(f"{v.name}_scale", scale), self.init(f"{v.name}_zero_point", zp, dtype=v.type.dtype),
                attrs)

    # ---- IR values as ONNX tensors ---------------------------------------------------------
    def real(self, v) -> str:
        """The float (or plain integer) tensor holding v's values as ops read them."""
        if v is None:
            return ""
        if v.type.quant is None:
            return v.name
        if v not in self.views:
            scale, zp, attrs = self.qparams(v)
            view = self.name(f"{v.name}_dequantized")
            if v.type.dtype == "i4":  # before opset 21, onnxruntime's own DequantizeLinear reads INT4
                attrs["domain"] = CONTRIB
            self.node("DequantizeLinear", [v.name, scale, zp], [view], f"{v.name}_DequantizeLinear", **attrs)
            self.views[v] = view
        return self.views[v]

    def result(self, v, write) -> None:
        """Call write(float tensor name); a quantized v then gets its QuantizeLinear."""
        if v.type.quant is None:
            write(v.name)
            return
        real = self.name(f"{v.name}_float")
        write(real)
        scale, zp, attrs = self.qparams(v)
        self.node("QuantizeLinear", [real, scale, zp], [v.name], f"{v.name}_QuantizeLinear", **attrs)

    # ---- ops -------------------------------------------------------------------------------
    def op(self, op) -> None:
        if op.attrs.get("channels_last"):
            raise EdgeccError("channels-last ops cannot be written as ONNX: export before the layout pass",
                              node=op.name, op=op.kind)
        if op.kind == "quantize":
            x, y = op.operands[0], op.result
            scale, zp, attrs = self.qparams(y)
            self.node("QuantizeLinear", [self.real(x), scale, zp], [y.name], op.name, **attrs)
            return
        if op.kind == "dequantize":
            x, y = op.operands[0], op.result
            scale, zp, attrs = self.qparams(x)
            self.node("DequantizeLinear", [x.name, scale, zp], [y.name], op.name, **attrs)
            return
        if op.kind == "fully_connected":
            self._activated(op, self._fully_connected(op))
            return
        if op.kind not in ONNX_OPS:
            raise EdgeccError(f"no ONNX form for IR op kind '{op.kind}' in the exporter", node=op.name, op=op.kind)
        if op.kind == "max_pool" and len(op.results) > 1:
            raise EdgeccError("max_pool with indices cannot be exported", node=op.name, op=op.kind)
        op_type, form = ONNX_OPS[op.kind]
        try:
            attrs, consts = form(op)
        except ValueError as e:
            raise EdgeccError(f"cannot be written as ONNX: {e}", node=op.name, op=op.kind) from None
        inputs = [self.real(v) for v in op.operands]
        for pos, data in sorted(consts.items()):
            inputs += [""] * (pos + 1 - len(inputs))
            inputs[pos] = self.init(f"{op.name or op_type}_{pos}", data)
        while inputs and inputs[-1] == "":
            inputs.pop()
        if len(op.results) == 1:
            self._activated(op, lambda out: self.node(op_type, inputs, [out], op.name, **attrs))
            return
        names = [r.name if r.type.quant is None else self.name(f"{r.name}_float") for r in op.results]
        self.node(op_type, inputs, names, op.name, **attrs)
        for r, real in zip(op.results, names):
            if r.type.quant is not None:
                scale, zp, qattrs = self.qparams(r)
                self.node("QuantizeLinear", [real, scale, zp], [r.name], f"{r.name}_QuantizeLinear", **qattrs)

    def _activated(self, op, core) -> None:
        """core(out) writes the op itself; a fused activation follows it as its own node."""
        act = op.attrs.get("activation", "none")

        def write(out):
            if act == "none":
                core(out)
                return
            if act not in ACTIVATIONS:
                raise EdgeccError(f"fused activation '{act}' has no ONNX form here", node=op.name, op=op.kind)
            pre = self.name(f"{op.result.name}_preactivation")
            core(pre)
            op_type, form = ACTIVATIONS[act]
            attrs, consts = form(list(op.attrs.get("act_params", [])))
            inputs = [pre] + [""] * (max(consts, default=0))
            for pos, data in consts.items():
                inputs[pos] = self.init(f"{op.name}_{op_type}_{pos}", data)
            self.node(op_type, inputs, [out], f"{op.name}_{op_type}", **attrs)

        self.result(op.result, write)

    def _fully_connected(self, op):
        """fully_connected as core(out): Gemm(x, w, b, transB=1) for 2-D x, else MatMul(x, w^T) + b."""
        x, w = op.operands[0], op.operands[1]
        b = op.operands[2] if len(op.operands) > 2 else None
        xs, ws = self.real(x), self.real(w)
        bs = self.real(b) if b is not None else ""

        def write(out):
            if x.type.rank == 2:
                self.node("Gemm", [xs, ws] + ([bs] if bs else []), [out], op.name, transB=1)
                return
            wt = self.name(f"{w.name}_kn")
            self.node("Transpose", [ws], [wt], f"{op.name}_Transpose", perm=[1, 0])
            if not bs:
                self.node("MatMul", [xs, wt], [out], op.name)
                return
            mm = self.name(f"{op.result.name}_matmul")
            self.node("MatMul", [xs, wt], [mm], op.name)
            self.node("Add", [mm, bs], [out], f"{op.name}_Add")
        return write


def checked_model(graph, nodes: list, inits: list, opset: int = OPSET, full_check: bool = False):
    """An onnx.ModelProto of the nodes and initializers, with graph's inputs and outputs (names,
    dtypes, static shapes), checked by onnx.checker (and importing onnxruntime's domain when a node
    is from it)."""
    import onnx
    from onnx import helper

    def info(v):
        return helper.make_tensor_value_info(v.name, helper.np_dtype_to_tensor_dtype(v.type.np_dtype),
                                             list(v.type.shape))

    g = helper.make_graph(nodes, graph.name, [info(v) for v in graph.inputs], [info(v) for v in graph.outputs],
                          inits)
    opsets = [helper.make_opsetid("", opset)]
    if any(n.domain == CONTRIB for n in nodes):
        opsets.append(helper.make_opsetid(CONTRIB, 1))
    model = helper.make_model(g, opset_imports=opsets, producer_name="edgecc")
    model.ir_version = IR_VERSION if opset <= 17 else 9  # opset 20 and later need IR version 9
    if any(t.data_type == onnx.TensorProto.INT4 for t in inits):
        model.ir_version = max(model.ir_version, 10)  # INT4 came with IR version 10
    onnx.checker.check_model(model, full_check=full_check)
    return model


def to_onnx(graph):
    """The graph as an onnx.ModelProto (QDQ where it is quantized), checked by onnx.checker."""
    w = _Writer(graph)
    for c in graph.constants:
        w.init(c.name, c.data, exact=True, dtype=c.type.dtype)
    for op in graph.ops:
        w.op(op)
    return checked_model(graph, w.nodes, w.inits)


def qdq_model_bytes(graph) -> bytes:
    """The serialized ONNX model of `graph` (see to_onnx)."""
    return to_onnx(graph).SerializeToString()
