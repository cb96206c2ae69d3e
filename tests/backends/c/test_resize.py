"""C kernel for resize: nearest/linear/cubic, every coordinate transformation mode, any rank,
exclude_outside, tf_crop_and_resize with extrapolation, nearest on integer and quantized data, and
scales / roi given at run time (tables built in scratch) or as constant operands (folded)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported, select
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, kernel_tests, onnx_ref, random_data  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(3)
CTMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]


def onnx_model(x, scales, roi, attrs, opset=19):
    from onnx import TensorProto, helper as oh
    node = oh.make_node("Resize", ["x", "roi", "scales"], ["y"], **attrs)
    inits = [oh.make_tensor("roi", TensorProto.FLOAT, [len(roi)], roi),
             oh.make_tensor("scales", TensorProto.FLOAT, [len(scales)], scales)]
    g = oh.make_graph([node], "g", [oh.make_tensor_value_info("x", oh.np_dtype_to_tensor_dtype(x.dtype), x.shape)],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])


def ort_resize(x, scales, attrs, roi=()):
    ort = pytest.importorskip("onnxruntime")
    m = onnx_model(x, scales, list(roi), attrs)
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


CASES = []


def case(name, x, scales, attrs, roi=(), quant=None, expected=None):
    """A resize case; expected from onnx's reference unless given."""
    scales = [float(np.float32(s)) for s in scales]  # the frontend reads float32 scales
    if expected is None:
        expected = onnx_ref("Resize", [x, np.array(roi, np.float32), np.array(scales, np.float32)], attrs)[0]
    ir_attrs = dict(attrs, scales=scales, roi=[float(r) for r in roi])
    CASES.append(Case(name, "resize", ir_attrs, [Arg(x, quant=quant)], [expected], result_quant=quant, atol=1e-4))


x4 = random_data(rng, (1, 2, 4, 6))  # scales that give whole output widths (see the last cases)
for ctm in CTMS:
    for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        case(f"nearest_{ctm}_{nm}", x4, [1, 1, 2, 1.5], dict(mode="nearest", coordinate_transformation_mode=ctm,
                                                             nearest_mode=nm))
    case(f"linear_{ctm}", x4, [1, 1, 1.5, 0.5], dict(mode="linear", coordinate_transformation_mode=ctm))
    case(f"cubic_{ctm}", x4, [1, 1, 2, 1.5], dict(mode="cubic", coordinate_transformation_mode=ctm))
x8 = random_data(rng, (1, 1, 6, 8))
case("nearest_down", x8, [1, 1, 0.5, 0.75], dict(mode="nearest"))
case("linear_down", x8, [1, 1, 0.5, 0.75], dict(mode="linear"))
case("cubic_down_exclude", x8, [1, 1, 0.5, 0.75], dict(mode="cubic", exclude_outside=1))
case("cubic_a05_exclude", x4, [1, 1, 2, 2], dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1))
case("cubic_a05_asym", x4, [1, 1, 3, 0.5], dict(mode="cubic", cubic_coeff_a=-0.5,
                                                coordinate_transformation_mode="asymmetric"))
case("linear_fractional_symmetric", random_data(rng, (1, 1, 5, 5)), [1, 1, 1.5, 1.5],
     dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"))

# any rank, any resized axes; trailing untouched axes form a row
case("linear_rank3_last", random_data(rng, (2, 3, 4)), [1, 1, 2.5], dict(mode="linear"))
case("linear_rank5", random_data(rng, (1, 2, 2, 3, 4)), [1, 1, 2, 2, 1.5], dict(mode="linear"))
case("cubic_rank1", random_data(rng, (6,)), [1.5], dict(mode="cubic"))
xh = random_data(rng, (1, 4, 5, 3))  # NHWC: channels stay a contiguous row
case("linear_nhwc", xh, [1, 2, 1.4, 1], dict(mode="linear"))
case("cubic_nhwc", xh, [1, 0.5, 2, 1], dict(mode="cubic", coordinate_transformation_mode="align_corners"))
case("nearest_nhwc", xh, [1, 2, 2, 1], dict(mode="nearest"))
case("linear_channels", random_data(rng, (1, 3, 2, 2)), [1, 2, 1, 1], dict(mode="linear"))
case("linear_middle_untouched", random_data(rng, (2, 3, 4, 2)), [2, 1, 1, 2], dict(mode="linear"))

# tf_crop_and_resize: a window of the input, outside it the extrapolation value
for mode in ("nearest", "linear", "cubic"):
    case(f"crop_{mode}", x4, [1, 1, 2, 1.5], dict(mode=mode, coordinate_transformation_mode="tf_crop_and_resize",
                                                  extrapolation_value=-2.5),
         roi=[0, 0, -0.2, 0.3, 1, 1, 0.8, 1.4])
case("crop_inside", x8, [1, 1, 0.5, 1], dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"),
     roi=[0, 0, 0.25, 0.1, 1, 1, 0.75, 0.6])

# nearest moves stored values: any dtype, quantized tensors keep their quantization
for dt in ("int8", "uint8", "int64", "int16"):
    case(f"nearest_{dt}", random_data(rng, (1, 2, 3, 3), dt), [1, 1, 2, 1.5], dict(mode="nearest"))
xb = random_data(rng, (1, 2, 3, 3), "bool")  # not an ONNX Resize type; as uint8 it moves the same bytes
case("nearest_bool", xb, [1, 1, 2, 1.5], dict(mode="nearest"), expected=onnx_ref(
    "Resize", [xb.astype(np.uint8), np.array([], np.float32), np.array([1, 1, 2, 1.5], np.float32)],
    dict(mode="nearest"))[0].astype(bool))
Q = Quant((0.1,), (5,))
xq = random_data(rng, (1, 1, 3, 4), "int8")
case("nearest_quant", xq, [1, 1, 2, 2], dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                               nearest_mode="floor"), quant=Q)
crop = dict(mode="nearest", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=1.0)
roi = [0, 0, -0.5, 0, 1, 1, 1, 1.5]
stored = onnx_ref("Resize", [xq, np.array(roi, np.float32), np.array([1, 1, 2, 2], np.float32)],
                  dict(crop, extrapolation_value=15.0))[0]  # the real 1.0 is stored as 1.0 / 0.1 + 5
case("crop_nearest_quant", xq, [1, 1, 2, 2], crop, roi=roi, quant=Q, expected=stored)

# where onnx's reference departs from the spec text, onnxruntime (which follows it) is the oracle
xo = random_data(rng, (1, 1, 2, 5))
corners = dict(mode="linear", coordinate_transformation_mode="align_corners")
case("align_corners_fractional", xo, [1, 1, 1, 1.5], corners, expected=ort_resize(xo, [1, 1, 1, 1.5], corners))
to_one = dict(mode="cubic", coordinate_transformation_mode="pytorch_half_pixel")
case("pytorch_half_pixel_to_one", xo, [1, 1, 1, 0.2], to_one, expected=ort_resize(xo, [1, 1, 1, 0.2], to_one))


# scales and roi given at run time (operands): the tables are built in scratch. Oracle: onnx's reference,
# which computes coordinates in double as edgecc does (onnxruntime's float rounds some exact ties the other
# way: floor((0.5 + 1) / 0.6f - 0.5) is 1 in double, 2 in float); onnxruntime where the reference departs
def ort_runtime(x, out_shape, attrs, scales=None, roi=None, axes=None):
    """onnxruntime's Resize with scales / roi as graph inputs (sizes, a constant, when scales are not given)."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper as oh
    names, feeds, inputs, inits = ["x", "", ""], {"x": x}, [], []
    for i, (name, value) in enumerate((("roi", roi), ("scales", scales)), start=1):
        if value is not None:
            names[i], feeds[name] = name, np.array(value, np.float32)
            inputs.append(oh.make_tensor_value_info(name, TensorProto.FLOAT, [len(value)]))
    if scales is None:
        sizes = [out_shape[a] for a in axes] if axes else list(out_shape)
        names.append("sizes")
        inits.append(oh.make_tensor("sizes", TensorProto.INT64, [len(sizes)], sizes))
    node = oh.make_node("Resize", names, ["y"], **attrs, **({"axes": axes} if axes else {}))
    elem = oh.np_dtype_to_tensor_dtype(x.dtype)
    g = oh.make_graph([node], "g", [oh.make_tensor_value_info("x", elem, x.shape)] + inputs,
                      [oh.make_tensor_value_info("y", elem, out_shape)], inits)
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 19)])
    m.ir_version = 9
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def runtime_case(name, x, out_shape, attrs, scales=None, roi=None, axes=None, const_operands=False, ort=False):
    """A resize whose scales and/or roi are operands (graph inputs, or constants with const_operands)."""
    rank = x.ndim
    axes_ = axes or list(range(rank))
    if ort:
        expected = ort_runtime(x, out_shape, attrs, scales, roi, axes)
    else:
        sizes = None if scales is not None else np.array([out_shape[a] for a in axes_], np.int64)
        given = [None if v is None else np.array(v, np.float32) for v in (roi, scales)]
        expected = onnx_ref("Resize", [x, *given, sizes], dict(attrs, **({"axes": axes} if axes else {})))[0]
    ir_attrs = dict(attrs, axes=axes_, scales=[o / i for o, i in zip(out_shape, x.shape)],
                    roi=[0.0] * rank + [1.0] * rank if roi is not None else [])

    def operand(values):
        if values is None:
            return None
        return Arg(np.array(values, np.float32), const=const_operands)
    operands = [Arg(x), operand(roi)] + ([operand(scales)] if scales is not None else [])
    CASES.append(Case(name, "resize", ir_attrs, operands, [expected], atol=1e-4))


xr = random_data(rng, (1, 3, 4, 5))
for ctm in ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "asymmetric"):
    for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        # 1.7 and 0.6 give 6 and 3 outputs: the coordinates follow the scales, not the size ratios
        runtime_case(f"rt_nearest_{ctm}_{nm}", xr, (1, 3, 6, 3),
                     dict(mode="nearest", coordinate_transformation_mode=ctm, nearest_mode=nm), scales=[1, 1, 1.7, 0.6])
    runtime_case(f"rt_linear_{ctm}", xr, (1, 3, 6, 3), dict(mode="linear", coordinate_transformation_mode=ctm),
                 scales=[1, 1, 1.7, 0.6])
    runtime_case(f"rt_cubic_{ctm}", xr, (1, 3, 9, 8), dict(mode="cubic", coordinate_transformation_mode=ctm),
                 scales=[1, 1, 2.3, 1.6])
runtime_case("rt_cubic_exclude", xr, (1, 3, 2, 12), dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1),
             scales=[1, 1, 0.6, 2.5])
runtime_case("rt_pytorch_half_pixel_to_one", xr, (1, 3, 1, 5),
             dict(mode="cubic", coordinate_transformation_mode="pytorch_half_pixel"), scales=[1, 1, 0.3, 1], ort=True)
runtime_case("rt_linear_ort", xr, (1, 3, 7, 9), dict(mode="linear"), scales=[1, 1, 1.9, 1.9], ort=True)
runtime_case("rt_linear_listed_axes", xr, (1, 3, 8, 7), dict(mode="linear"), scales=[1.5, 2.0], axes=[3, 2])
runtime_case("rt_channels_tabled", xr, (1, 3, 6, 5), dict(mode="linear"), scales=[1, 1.2, 1.5, 1])
runtime_case("rt_linear_nhwc_row", random_data(rng, (1, 4, 5, 3)), (1, 6, 9, 3), dict(mode="linear"),
             scales=[1.5, 1.9], axes=[1, 2])
runtime_case("rt_nearest_int8", random_data(rng, (1, 2, 3, 3), "int8"), (1, 2, 5, 4), dict(mode="nearest"),
             scales=[1.8, 1.5], axes=[2, 3])
runtime_case("rt_constant_scales_fold", xr, (1, 3, 6, 3), dict(mode="linear"), scales=[1, 1, 1.7, 0.6],
             const_operands=True)
for mode in ("nearest", "linear", "cubic"):
    runtime_case(f"rt_crop_{mode}", xr, (1, 3, 5, 7),
                 dict(mode=mode, coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-2.5),
                 roi=[0, 0, -0.2, 0.3, 1, 1, 0.8, 1.4])
runtime_case("rt_crop_listed_axes_to_one", xr, (1, 3, 1, 6),
             dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"), roi=[0.1, 0.2, 0.9, 0.6],
             axes=[3, 2])

results, test_resize, test_resize_sanitized = kernel_tests(CASES)


def test_linear_on_integers_is_unsupported():
    x, y = Value("x", TensorType((1, 1, 2, 2), "i8")), Value("y", TensorType((1, 1, 4, 4), "i8"))
    with pytest.raises(Unsupported):
        select(Op("resize", [x], [y], fill_defaults("resize", dict(mode="linear", scales=[1, 1, 2, 2])), "r"))


def test_tables_are_per_axis():
    """A bilinear 2x upscale of 64x64 carries 2 taps per output coordinate of each axis, no more."""
    x, y = Value("x", TensorType((1, 8, 64, 64), "f32")), Value("y", TensorType((1, 8, 128, 128), "f32"))
    k = select(Op("resize", [x], [y], fill_defaults("resize", dict(mode="linear", scales=[1.0, 1.0, 2.0, 2.0])), "r"))
    assert sum(t.size for _, t in k.consts) == 2 * 2 * (128 + 128)


def _runtime_scales_op(scales_value=None):
    """A bilinear 4x5 -> 6x3 resize of a [1, 8, 4, 5] tensor whose scales are an operand listing axes 2 and 3."""
    x, y = Value("x", TensorType((1, 8, 4, 5), "f32")), Value("y", TensorType((1, 8, 6, 3), "f32"))
    s = Value("s", TensorType((2,), "f32"), None if scales_value is None else np.array(scales_value, np.float32))
    attrs = fill_defaults("resize", dict(mode="linear", scales=[1.0, 1.0, 1.5, 0.6], axes=[2, 3]))
    return Op("resize", [x, None, s], [y], attrs, "r")


def test_runtime_tables_live_in_scratch():
    """Run-time scales: each listed axis builds its int32 offsets and float weights (2 taps per output
    coordinate) in scratch; the channel axis, not listed, stays a plain stride."""
    k = select(_runtime_scales_op())
    assert k.consts == [] and k.scratch == (6 + 3) * 2 * (4 + 4)
    assert [s["axis"] for s in k.vars["setups"]] == [2, 3]


def test_constant_scales_operand_is_folded():
    k = select(_runtime_scales_op([1.7, 0.6]))
    assert k.scratch == 0 and sorted(name for name, _ in k.consts) == ["off2", "off3", "w2", "w3"]
    assert k.replaced == (2,)  # the C file does not carry the folded scales
