"""The i4 element type: 4-bit weights held one per int8 in memory, packed two a byte in the text (as ONNX's
INT4), constants only, values in [-8, 7]; the interpreter reads them through their quantization."""
from __future__ import annotations

import numpy as np
import pytest

from edgecc.ir import Graph, Op, Quant, TensorType, Value, parse, print_graph, verify
from edgecc.ir.interp import run, to_stored
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import dtype_name, int_range, pack_int4, unpack_int4
from edgecc.ir.verifier import VerifyError

rng = np.random.default_rng(4)


def fc_graph(codes, scales=(0.5, 0.25)) -> Graph:
    x = Value("x", TensorType((1, codes.shape[1]), "f32"))
    w = Value("w", TensorType(codes.shape, "i4", Quant(tuple(scales), (0,) * len(scales), 0)), codes)
    y = Value("y", TensorType((1, codes.shape[0]), "f32"))
    op = Op("fully_connected", [x, w], [y], fill_defaults("fully_connected", {}), "fc")
    return Graph("g", [x], [y], [op], [w])


def test_packing_is_onnx_int4():
    onnx = pytest.importorskip("onnx")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    values = rng.integers(-8, 8, 11).astype(np.int8)  # odd: the last high nibble is padding
    tensor = onnx.numpy_helper.from_array(values.astype(ml_dtypes.int4), "w")
    assert pack_int4(values).tobytes() == tensor.raw_data
    np.testing.assert_array_equal(unpack_int4(np.frombuffer(tensor.raw_data, np.uint8), 11), values)


def test_type_facts():
    t = TensorType((3, 5), "i4")
    assert t.nbytes == 8 and t.np_dtype == np.int8 and int_range("i4") == (-8, 7)
    assert dtype_name(np.int8) == "i8"  # an int8 array is i8; i4 is only ever named


def test_text_round_trip_packs_two_a_byte():
    codes = rng.integers(-8, 8, (2, 7)).astype(np.int8)
    g = fc_graph(codes)
    text = print_graph(g)
    assert 'xi4, q(axis=0, [0.5, 0.25], [0, 0])> hex"' in text
    hex_digits = text.split('hex"')[1].split('"')[0]
    assert len(hex_digits) == 2 * 7  # 14 values, 7 bytes
    back = parse(text)
    np.testing.assert_array_equal(back.constants[0].data, codes)
    assert print_graph(back) == text


def test_interpreter_reads_the_real_weights():
    codes = rng.integers(-8, 8, (2, 6)).astype(np.int8)
    x = rng.standard_normal((1, 6)).astype(np.float32)
    (y,) = run(fc_graph(codes), [x])
    want = x.astype(np.float64) @ (codes.astype(np.float64) * np.array([[0.5], [0.25]])).T
    np.testing.assert_allclose(y, want, rtol=1e-6)


def test_quantizing_into_i4_saturates_at_its_range():
    t = TensorType((4,), "i4", Quant((1.0,), (0,)))
    np.testing.assert_array_equal(to_stored(t, np.array([-20.0, -8.4, 6.6, 30.0])), [-8, -8, 7, 7])


def test_verifier_wants_constants_in_range():
    g = fc_graph(np.array([[1, 8]], np.int8), scales=(1.0,))
    with pytest.raises(VerifyError, match=r"%w: i4 data outside \[-8, 7\]"):
        verify(g)
    x = Value("x", TensorType((1, 2), "i4"))
    y = Value("y", TensorType((1, 2), "i4"))
    with pytest.raises(VerifyError, match="an i4 tensor must be a constant"):
        verify(Graph("g", [x], [y], [Op("identity", [x], [y], {}, "id")], []))


def test_verifier_bounds_i4_zero_points():
    g = fc_graph(np.zeros((1, 2), np.int8), scales=(1.0,))
    g.constants[0].type = g.constants[0].type.with_(quant=Quant((1.0,), (9,), 0))
    with pytest.raises(VerifyError, match=r"zero point outside the range of i4 \(-8..7\)"):
        verify(g)
