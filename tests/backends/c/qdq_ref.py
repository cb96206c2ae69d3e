"""Expected values for the integer kernels: one-op QDQ models (DequantizeLinear -> op -> QuantizeLinear)
run in onnxruntime with its default optimizations, which fuse them into its integer kernels
(QLinearConv, QLinearAdd, QLinearSoftmax, ...) as it does for real models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from onnx import helper as oh
from onnx import numpy_helper as nh

from edgecc.ir.types import Quant


@dataclass
class Q:
    """An operand as onnxruntime sees it: stored integers (or floats when quant is None)."""

    data: np.ndarray
    quant: Optional[Quant] = None
    const: bool = False
    int4: bool = False  # a constant of 4-bit codes: an INT4 initializer, read by onnxruntime's DequantizeLinear


def _tensor_type(a) -> int:
    return oh.np_dtype_to_tensor_dtype(np.asarray(a).dtype)


def qdq_run(op_type: str, operands: list, attrs: dict, out_quant: Optional[Quant], out_dtype=None,
            post: Optional[list] = None, opset: int = 17) -> np.ndarray:
    """Run `op_type` on dequantized operands, then (optionally) `post` float ops (e.g. ["Relu"]), then
    QuantizeLinear to out_quant/out_dtype (out_quant None: keep the op's result, of type out_dtype,
    float unless given)."""
    out_dtype = out_dtype or (np.int8 if out_quant is not None else np.float32)
    nodes, inits, inputs, feeds, names = [], [], [], {}, []
    for i, a in enumerate(operands):
        if a is None:
            names.append("")
            continue
        stored = f"x{i}"
        if a.int4:
            import ml_dtypes

            inits.append(nh.from_array(np.asarray(a.data).astype(ml_dtypes.int4), stored))
        elif a.const:
            inits.append(nh.from_array(np.asarray(a.data), stored))
        else:
            inputs.append(oh.make_tensor_value_info(stored, _tensor_type(a.data), list(a.data.shape)))
            feeds[stored] = np.asarray(a.data)
        if a.quant is None:
            names.append(stored)
            continue
        q = a.quant
        zdt = np.asarray(a.data).dtype
        zero = np.asarray(q.zero_point, zdt).reshape(-1 if q.axis is not None else ())
        if a.int4:
            import ml_dtypes

            zero = zero.astype(ml_dtypes.int4)
        inits += [nh.from_array(np.asarray(q.scale, np.float32).reshape(-1 if q.axis is not None else ()), f"s{i}"),
                  nh.from_array(zero, f"z{i}")]
        kw = {"axis": q.axis} if q.axis is not None else {}
        if a.int4:  # before opset 21 only onnxruntime's own DequantizeLinear reads INT4
            kw["domain"] = "com.microsoft"
        nodes.append(oh.make_node("DequantizeLinear", [stored, f"s{i}", f"z{i}"], [f"f{i}"], **kw))
        names.append(f"f{i}")
    nodes.append(oh.make_node(op_type, names, ["r0"], **attrs))
    last = "r0"
    for j, p in enumerate(post or []):
        nodes.append(oh.make_node(p, [last], [f"p{j}"]))
        last = f"p{j}"
    if out_quant is not None:
        inits += [nh.from_array(np.asarray(out_quant.scale[0], np.float32), "sy"),
                  nh.from_array(np.asarray(out_quant.zero_point[0], out_dtype), "zy")]
        nodes.append(oh.make_node("QuantizeLinear", [last, "sy", "zy"], ["y"]))
        last = "y"
    out_type = _tensor_type(np.zeros(0, out_dtype))
    out = oh.make_tensor_value_info(last, out_type, None)
    opsets = [oh.make_opsetid("", opset)] + [oh.make_opsetid("com.microsoft", 1)] * any(a is not None and a.int4
                                                                                      for a in operands)
    model = oh.make_model(oh.make_graph(nodes, "qdq", inputs, [out], inits), opset_imports=opsets)
    if len(opsets) > 1:
        model.ir_version = 10  # INT4
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def lsb_report(name: str, got: np.ndarray, want: np.ndarray) -> tuple:
    """(exact fraction, max difference in LSB) of an integer result."""
    d = np.abs(got.astype(np.int64) - want.astype(np.int64))
    return float((d == 0).mean()) if d.size else 1.0, int(d.max()) if d.size else 0
