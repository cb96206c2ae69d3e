"""The capability table's constraints Vela's rules need (the ethos-u55 target): each one passing an op and
refusing one with its reason, a malformed value refused naming the entry, and the ethos-u55 table
accepting every op of the lowered MLPerf int8 models (Vela 5.2 maps all of their .tflite files' operators
to the NPU: 0 CPU operators)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.registry import Target, get_target
from edgecc.compiler.capabilities import op_key, read_capabilities
from edgecc.ir.errors import EdgeccError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "passes"))
from pass_cases import Builder, q  # noqa: E402

from conftest import mlperf_path  # noqa: E402

COSTS = dict(macs_per_cycle=128, clock_hz=5e8, cpu_cycles_per_mac=1.7, cpu_cycles_per_byte=4.0, cpu_clock_hz=5e8,
             transfer_bytes_per_cycle=8.0, invoke_overhead_cycles=5000)
Q = q(0.1)


def caps(kind, rules):
    t = Target(name="npu", backend="delegate", description="", path="npu.toml",
               accelerator=dict(name="NPU", **COSTS, ops={kind: rules}))
    return read_capabilities(t.accelerator, t.path)


# ---- ops, NHWC int8 as the layout pass hands them over -------------------------------------------
def conv(x_shape=(1, 8, 8, 2), w=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), x_quant=Q,
         w_dtype="i8", w_quant=Q, bias=None, bias_dtype="i32"):
    b = Builder()
    x = b.input("x", x_shape, "i8", x_quant)
    w = b.const("w", w, w_dtype, w_quant) if isinstance(w, np.ndarray) else \
        b.weights("w", (4, 3, 3, x_shape[-1]), w_dtype, w_quant)
    operands = [x, w] + ([b.const("b", np.asarray(bias), bias_dtype, q(0.01))] if bias is not None else [])
    return b.op("conv", operands, name="conv", dtype="i8", quant=Q, strides=list(strides), pads=list(pads),
                dilations=list(dilations), channels_last=1).producer


def pool(kind="average_pool", shape=(1, 20, 20, 2), kernel=(4, 4), strides=(4, 4), pads=(0, 0, 0, 0)):
    b = Builder()
    x = b.input("x", shape, "i8", Q)
    extra = {"dilations": [1, 1]} if kind == "max_pool" else {}
    return b.op(kind, [x], name="pool", quant=Q, kernel_shape=list(kernel), strides=list(strides),
                pads=list(pads), channels_last=1, **extra).producer


def binary(kind="add", dtype="i8", a_quant=Q, b_quant=Q, out_quant=Q, const_b=False):
    b = Builder()
    x = b.input("a", (1, 4, 4, 8), dtype, a_quant)
    y = b.weights("b", (1, 4, 4, 8), dtype, b_quant) if const_b else b.input("b", (1, 4, 4, 8), dtype, b_quant)
    return b.op(kind, [x, y], name=kind, quant=out_quant).producer


def unary(kind, shape, dtype="i8", out_dtype=None, **attrs):
    b = Builder()
    x = b.input("x", shape, dtype, Q)
    return b.op(kind, [x], name=kind, dtype=out_dtype, quant=Q, **attrs).producer


def reduce(shape, axes, dtype="i8"):
    return unary("reduce_mean", shape, dtype, axes=list(axes), keepdims=1)


def resize(shape, out_shape, mode="nearest", coordinates="asymmetric"):
    b = Builder()
    x = b.input("x", shape, "i8", Q)
    scales = [o / i for i, o in zip(shape, out_shape)]
    return b.op("resize", [x], name="resize", out_shape=out_shape, quant=Q, mode=mode, scales=scales,
                coordinate_transformation_mode=coordinates,
                nearest_mode="floor" if coordinates == "asymmetric" else "round_prefer_ceil").producer


def slice_(axis, step, shape=(1, 8, 8, 4)):
    return unary("slice", shape, starts=[0], ends=[shape[axis]], axes=[axis], steps=[step])


# OHWI 1x1 weights: output channel 0 [1, 2, 3], channel 1 [-4, 4, 4]: sums of |q - zero point| 6 and 12 at
# zero point 0, 9 and 13 at zero point -1
SUMS = np.array([[1, 2, 3], [-4, 4, 4]]).reshape(2, 1, 1, 3)


# (key, value, an op it accepts, an op it refuses, the refusal's reason)
CASES = [
    ("quantized", True, conv(), conv(x_quant=None), "tensor %x has no quantization parameters"),
    ("quantized", True, conv(), conv(w_quant=q(0.0)), "tensor %w has a quantization scale 0.0 (positive only)"),
    ("int32_zero_point_zero", True, binary(dtype="i32"), binary(dtype="i32", b_quant=q(0.1, 3)),
     "int32 tensor %b has zero point 3 (0 only)"),
    ("operand_dtypes", {"1": ["int8", "uint8"], "2": ["int32", "int64"]}, conv(bias=[1, 2, 3, 4]),
     conv(bias=[1, 2, 3, 4], bias_dtype="i16"), "operand 2 %b is int16 (int32/int64 only)"),
    ("operand_dtypes", {"1": ["int8", "uint8"]}, conv(), conv(w_dtype="i16"), "operand 1 %w is int16 (int8/uint8 only)"),
    ("bias_max", 1000, conv(bias=[5, 999, -7000, 0]), conv(bias=[5, 1000, 0, 0]), "bias %b holds 1,000 (below 1,000 only)"),
    ("weights_abs_sum_max", 12, conv((1, 4, 4, 3), SUMS), conv((1, 4, 4, 3), SUMS, w_quant=q(0.1, -1)),
     "weights %w: output channel 1 has a sum of absolute weights 13 (at most 12)"),
    ("stride_over_3_valid_only", True, pool(), pool(pads=(1, 1, 1, 1)),
     "strides [4, 4] with dilations [] and pads [1, 1, 1, 1] (a stride above 3 only with dilation 1 and no padding)"),
    ("stride_over_3_valid_only", True, conv((1, 16, 16, 2), strides=(4, 4)),
     conv((1, 16, 16, 2), strides=(4, 4), dilations=(2, 2)), "strides [4, 4] with dilations [2, 2] and pads"),
    ("padded_kernel_max", [8, 8], pool(kernel=(9, 9), strides=(1, 1)), pool(kernel=(9, 9), strides=(1, 1), pads=(1, 1, 1, 1)),
     "kernel [9, 9] with pads [1, 1, 1, 1] (at most [8, 8] when padded)"),
    ("same_quant", True, binary("max", const_b=True), binary("max", b_quant=q(0.2)),
     "tensor %b is quantized (scale 0.2, zero point 0), the result (scale 0.1, zero point 0) (the same scale and zero point only)"),
    ("reduced_elements_max", {"int8": 16, "int16": 4}, reduce((1, 4, 4, 8), [1, 2]), reduce((1, 4, 4, 8), [1, 2], "i16"),
     "16 reduced elements of int16 tensor %x (at most 4)"),
    ("reduced_elements_max", {"int8": 15}, reduce((1, 4, 2, 8), [1, 2]),
     unary("global_average_pool", (1, 4, 4, 8), channels_last=1), "16 reduced elements of int8 tensor %x (at most 15)"),
    ("batch_max", 1, reduce((1, 4, 4, 8), [1, 2]), reduce((2, 4, 4, 8), [1, 2]), "batch 2 of tensor %x (at most 1)"),
    ("reduced_axis_max", 4095, reduce((1, 1, 4095, 1), [2]), reduce((1, 1, 4096, 1), [2]),
     "reduced axis 2 of tensor %x has 4096 (at most 4095)"),
    ("depth_reduction_needs_unit_dim", True, reduce((1, 1, 4, 8), [3]), reduce((1, 2, 4, 8), [3]),
     "reduction over the channels of tensor %x of shape [1, 2, 4, 8] (only when H, W or C is 1)"),
    ("spatial_area_max", 65535, unary("softmax", (1, 12), axis=1), unary("softmax", (1, 256, 256, 1), axis=3),
     "tensor %x of shape [1, 256, 256, 1]: area 65,536 (at most 65,535)"),
    ("transpose_axes_product_max", 65536, unary("transpose", (1, 2, 256, 256), perm=[0, 2, 3, 1]),
     unary("transpose", (1, 2, 256, 257), perm=[0, 2, 3, 1]),
     "tensor %x of shape [1, 2, 256, 257]: 65,792 for its 2 largest dimensions (at most 65,536 for any 2)"),
    ("step_axes", [-3, -2], slice_(1, 2), slice_(3, 2), "step 2 on axis 3 of a rank-4 tensor (a step other than 1 on axes [-3, -2] only)"),
    ("upscale_factors", [2, 4, 8], resize((1, 4, 4, 2), (1, 16, 16, 2)), resize((1, 4, 4, 2), (1, 12, 12, 2)),
     "resize [1, 4, 4, 2] -> [1, 12, 12, 2] (H and W scaled alike by one of [2, 4, 8] only)"),
    ("upscale_factors", [2, 4, 8], resize((1, 1, 4, 2), (1, 1, 8, 2)), resize((1, 4, 4, 2), (1, 8, 16, 2)),
     "resize [1, 4, 4, 2] -> [1, 8, 16, 2] (H and W scaled alike by one of [2, 4, 8] only)"),
    ("upscale_factors", [2, 4, 8], resize((1, 3, 3, 2), (1, 5, 5, 2), "linear", "align_corners"),
     resize((1, 3, 3, 2), (1, 6, 6, 2), "linear", "align_corners"),
     "resize [1, 3, 3, 2] -> [1, 6, 6, 2] with align_corners (H and W scaled alike by one of [2, 4, 8] only)"),
    ("upscale_factors", [2], resize((1, 1, 1, 2), (1, 3, 5, 2)), resize((1, 2, 1, 2), (1, 6, 5, 2)),
     "resize [1, 2, 1, 2] -> [1, 6, 5, 2]"),
    ("half_pixel_upscale_factors", [2], resize((1, 4, 4, 2), (1, 8, 8, 2), "linear", "half_pixel"),
     resize((1, 4, 4, 2), (1, 16, 16, 2), "linear", "half_pixel"),
     "resize [1, 4, 4, 2] -> [1, 16, 16, 2] with half-pixel coordinates (H and W scaled alike by one of [2] only)"),
    ("same_dtype", True, unary("gelu", (1, 8)), unary("gelu", (1, 8), out_dtype="u8"),
     "int8 tensor %x for a uint8 result (the same dtype only)"),
]


@pytest.mark.parametrize("key, value, accepted, refused, reason", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_constraint_accepts_one_op_and_refuses_another(key, value, accepted, refused, reason):
    assert caps(op_key(accepted), {key: value}).why_not(accepted) is None
    got = caps(op_key(refused), {key: value}).why_not(refused)
    assert got is not None and reason in got, got


def test_half_pixel_factors_hold_only_for_linear_half_pixel_resizes():
    rules = {"half_pixel_upscale_factors": [2]}
    assert caps("resize", rules).why_not(resize((1, 4, 4, 2), (1, 16, 16, 2), "linear", "asymmetric")) is None
    assert caps("resize", rules).why_not(resize((1, 4, 4, 2), (1, 16, 16, 2), "nearest", "half_pixel")) is None
    assert caps("resize", rules).why_not(resize((1, 1, 1, 2), (1, 16, 16, 2), "linear", "half_pixel")) is None


def test_quantized_leaves_out_the_bias_and_int32_zero_points_read_run_time_tensors_only():
    """Vela's generic rule reads inputs, outputs and weights (not the bias); the int32 zero-point rule the
    feature maps."""
    b = Builder()
    x = b.input("x", (1, 4, 4, 2), "i8", Q)
    w = b.weights("w", (4, 1, 1, 2), "i8", Q)
    bias = b.const("bias", np.zeros(4), "i32")  # no quantization
    op = b.op("conv", [x, w, bias], name="conv", quant=Q, strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1],
              channels_last=1).producer
    assert caps("conv", {"quantized": True}).why_not(op) is None
    assert caps("add", {"int32_zero_point_zero": True}).why_not(binary(dtype="i32", b_quant=q(0.1, 3), const_b=True)) \
        is None


MALFORMED = [
    ("quantized", "yes", "'yes' is not true or false"),
    ("int32_zero_point_zero", 1, "1 is not true or false"),
    ("operand_dtypes", {"w": ["int8"]}, "{'w': ['int8']} is not a table of operand index = [dtype names]"),
    ("operand_dtypes", ["int8"], "['int8'] is not a table of operand index"),
    ("bias_max", -1, "-1 is not a positive integer"),
    ("weights_abs_sum_max", 8.5, "8.5 is not a positive integer"),
    ("stride_over_3_valid_only", "true", "'true' is not true or false"),
    ("padded_kernel_max", 8, "8 is not a list of positive integers"),
    ("same_quant", None, "None is not true or false"),
    ("reduced_elements_max", {"int8": "many"}, "{'int8': 'many'} is not a table of dtype name = positive integer"),
    ("batch_max", True, "True is not a positive integer"),
    ("reduced_axis_max", 0, "0 is not a positive integer"),
    ("depth_reduction_needs_unit_dim", [], "[] is not true or false"),
    ("spatial_area_max", "65535", "'65535' is not a positive integer"),
    ("transpose_axes_product_max", [65536], "[65536] is not a positive integer"),
    ("step_axes", [1, 2], "[1, 2] is not a list of negative axes"),
    ("upscale_factors", [2, 0], "[2, 0] is not a list of positive integers"),
    ("half_pixel_upscale_factors", [], "[] is not a list of positive integers"),
    ("same_dtype", "int8", "'int8' is not true or false"),
]


@pytest.mark.parametrize("key, value, why", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_value_is_refused_naming_the_entry(key, value, why):
    with pytest.raises(EdgeccError) as e:
        caps("conv", {key: value})
    assert str(e.value).startswith(f"npu.toml: [accelerator] ops.conv.{key}: {why}"), str(e.value)


@pytest.mark.parametrize("options, entry, why", [
    ("ethos-u55-128", "compiler_options", "expected a table of strings"),
    ({"memory_mode": 3}, "compiler_options.memory_mode", "3 is not a non-empty string"),
    ({"system_config": ""}, "compiler_options.system_config", "'' is not a non-empty string"),
])
def test_malformed_compiler_options_are_refused_naming_the_entry(options, entry, why):
    section = dict(name="NPU", **COSTS, ops={}, compiler="vela", compiler_options=options)
    with pytest.raises(EdgeccError) as e:
        read_capabilities(section, "npu.toml")
    assert str(e.value) == f"npu.toml: [accelerator] {entry}: {why}"


@pytest.mark.parametrize("value", [1, 5.0, True, "5"])
def test_a_malformed_boundary_limit_is_refused_naming_the_entry(value):
    with pytest.raises(EdgeccError) as e:
        read_capabilities(dict(name="NPU", **COSTS, ops={}, max_boundary_tensors=value), "npu.toml")
    assert str(e.value).startswith(f"npu.toml: [accelerator] max_boundary_tensors: {value!r} is not an integer of at least 2")


def test_the_ethos_u55_table_loads():
    t = get_target("ethos-u55")
    table = read_capabilities(t.accelerator, t.path)
    assert table.name == "Ethos-U55-128" and "conv" in table.ops
    assert table.compiler == "vela" and table.compiler_options["accelerator_config"] == "ethos-u55-128"


@pytest.mark.parametrize("stem", ["kws_int8", "vww_int8", "ic_int8", "ad_int8"])
def test_the_ethos_u55_table_accepts_every_op_of_the_lowered_mlperf_int8_models(stem):
    """Vela 5.2 compiles each model's original .tflite with 0 CPU operators; ad's ten fully connected layers
    (640 -> 128 -> ... -> 8 -> ... -> 640, per-tensor int8 weights, int32 biases) pass every rule too."""
    from edgecc.compiler.driver import load
    from edgecc.compiler.pipeline import lower

    path = mlperf_path(stem)
    t = get_target("ethos-u55")
    table = read_capabilities(t.accelerator, t.path)
    g = lower(load(path), "host", passes=["fold_constants", "fold_batchnorm", "fuse", "layout", "float_fallback"])
    refused = {op.name: table.why_not(op) for op in g.ops if table.why_not(op)}
    assert refused == {}
