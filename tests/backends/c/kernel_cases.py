"""Support for the C kernel tests: many one-op cases compiled and run as one graph.

One C build per test run keeps the suite fast: every case becomes one op in a shared graph (its
runtime operands graph inputs, its constant operands graph constants, its results graph outputs),
named after the case so that a failure names the layer function. Expected values come from onnx's
reference implementation (`onnx_ref`) or from a numpy model in the test file.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np
import onnx
import pytest
from onnx import helper as oh
from onnx.reference import ReferenceEvaluator

from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS, build_and_run
from edgecc.backends.registry import backend_for
from edgecc.compiler.passes.layout import DATA_LAYOUT, WEIGHT_LAYOUT
from edgecc.compiler.pipeline import lower
from edgecc.ir import Graph, Op, TensorType, Value, verify
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant, dtype_name

# Sanitized builds at -O0: the sanitizers check the same accesses, and an instrumented -O2 build of a
# graph of many cases takes ten times longer to compile.
SANITIZED_CFLAGS = STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"]


@dataclass
class Arg:
    """An operand: runtime input unless `const`; `quant` makes its stored integers quantized."""

    data: np.ndarray
    const: bool = False
    quant: Optional[Quant] = None
    dtype: str = ""  # the IR element type, when not the data's own (i4: 4-bit codes held in int8)


def const(data, quant=None) -> Arg:
    return Arg(np.asarray(data), True, quant)


@dataclass
class Case:
    name: str
    kind: str
    attrs: dict
    operands: list  # np.ndarray | Arg | None (a missing optional operand)
    expected: list  # one array per result (its dtype and shape give the result type)
    result_quant: Optional[Quant] = None
    atol: float = 1e-5
    rtol: float = 1e-3


def random_data(rng, shape, dtype="float32") -> np.ndarray:
    """Test data of any dtype: standard normal floats, small-ish integers, random booleans."""
    dt = np.dtype(dtype)
    if dt == np.float32:
        return rng.standard_normal(shape).astype(dt)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dt)


def _arg(a) -> Optional[Arg]:
    return a if a is None or isinstance(a, Arg) else Arg(np.asarray(a))


def build_graph(cases, name: str = "kernels") -> Graph:
    inputs, consts, ops, outputs = [], [], [], []
    for c in cases:
        attrs = fill_defaults(c.kind, c.attrs)
        # channels last: data tagged "nhwc" ("nwc"), conv weights "ohwi" ("owi"), as the layout pass tags them
        layouts = {0: {**DATA_LAYOUT, 5: "ndhwc"}, 1: {**WEIGHT_LAYOUT, 5: "odhwi"}} if attrs.get("channels_last") \
            else {}
        operands = []
        for j, a in enumerate(map(_arg, c.operands)):
            if a is None:
                operands.append(None)
                continue
            shape = tuple(a.data.shape)
            t = TensorType(shape, a.dtype or dtype_name(a.data.dtype), a.quant, layouts.get(j, {}).get(len(shape)))
            v = Value(f"{c.name}_x{j}", t, a.data.copy() if a.const else None)
            (consts if a.const else inputs).append(v)
            operands.append(v)
        results = [Value(f"{c.name}_y{j}", TensorType(tuple(e.shape), dtype_name(e.dtype), c.result_quant,
                                                      layouts.get(0, {}).get(len(e.shape))))
                   for j, e in enumerate(c.expected)]
        ops.append(Op(c.kind, operands, results, attrs, c.name))
        outputs += results
    g = Graph(name, inputs, outputs, ops, consts)
    verify(g)
    return g


def run_cases(cases, cflags=None, target="host", emulated=False, optimize="balanced") -> dict:
    """Emit (the C of `target`, kernels chosen for `optimize`), build and run every case in one graph: with
    the host's compiler, or with the target's cross compiler in its emulator (`emulated`);
    {case name: [outputs]}."""
    g = build_graph(cases)
    feeds = [np.ascontiguousarray(_arg(a).data) for c in cases for a in c.operands
             if a is not None and not _arg(a).const]
    g = lower(g, target, backend=backend_for(target, optimize), passes=["memory_plan"])
    with tempfile.TemporaryDirectory(prefix="edgecc-kernels-") as d:
        backend_for(target, optimize).emit(g, d)
        if emulated:
            from edgecc.backends.c import emulator
            outs = emulator.build_and_run(d, g, feeds, target, cflags=cflags).outputs
        else:
            outs = build_and_run(d, g, feeds, cflags=cflags if cflags is not None else STRICT_CFLAGS)
    got, at = {}, 0
    for c in cases:
        got[c.name] = outs[at:at + len(c.expected)]
        at += len(c.expected)
    return got


def check(case: Case, got: list) -> None:
    for j, (e, y) in enumerate(zip(case.expected, got)):
        assert y.shape == e.shape, f"{case.name} result {j}: shape {y.shape}, expected {e.shape}"
        if e.dtype == np.float32:
            np.testing.assert_allclose(y, e, rtol=case.rtol, atol=case.atol, err_msg=f"{case.name} result {j}")
        else:
            np.testing.assert_array_equal(y, e, err_msg=f"{case.name} result {j}")


def kernel_tests(cases):
    """The tests every kernel test file runs on its cases: a module fixture that builds them all once
    (strict flags), one test per case, and one sanitized build of them all. Use as
    `results, test_x, test_x_sanitized = kernel_tests(CASES)`."""
    @pytest.fixture(scope="module")
    def results():
        return run_cases(cases, STRICT_CFLAGS)

    @pytest.mark.parametrize("c", cases, ids=lambda c: c.name)
    def test_case(c, results):
        check(c, results[c.name])

    def test_sanitized():
        got = run_cases(cases, SANITIZED_CFLAGS)
        for c in cases:
            check(c, got[c.name])

    return results, test_case, test_sanitized


def one_node_model(op_type: str, inputs: list, attrs: dict, n_outputs: int = 1, opset: int = 21,
                   output_dtypes=None):
    """A model of one ONNX node and its feeds; None inputs are absent. Results are of undefined type
    unless `output_dtypes` (numpy dtypes) says, which onnxruntime needs."""
    names = [f"in{i}" if v is not None else "" for i, v in enumerate(inputs)]
    node = oh.make_node(op_type, names, [f"out{i}" for i in range(n_outputs)], **attrs)
    vis = [oh.make_tensor_value_info(n, oh.np_dtype_to_tensor_dtype(np.asarray(v).dtype), list(np.shape(v)))
           for n, v in zip(names, inputs) if v is not None]
    types = [oh.np_dtype_to_tensor_dtype(np.dtype(t)) for t in output_dtypes] if output_dtypes \
        else [onnx.TensorProto.UNDEFINED] * n_outputs
    outs = [oh.make_tensor_value_info(o, t, None) for o, t in zip(node.output, types)]
    model = oh.make_model(oh.make_graph([node], "ref", vis, outs), opset_imports=[oh.make_opsetid("", opset)])
    feeds = {n: np.asarray(v) for n, v in zip(names, inputs) if v is not None}
    return model, feeds


def onnx_ref(op_type: str, inputs: list, attrs: dict, n_outputs: int = 1, opset: int = 21) -> list:
    """Run one ONNX node with onnx's reference implementation; None inputs are absent."""
    model, feeds = one_node_model(op_type, inputs, attrs, n_outputs, opset)
    return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, feeds)]


def ort_ref(op_type: str, inputs: list, attrs: dict, output_dtypes, opset: int = 21) -> list:
    """Run one ONNX node with onnxruntime (skipping the test where it is not installed)."""
    ort = pytest.importorskip("onnxruntime")
    model, feeds = one_node_model(op_type, inputs, attrs, len(output_dtypes), opset, output_dtypes)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)
