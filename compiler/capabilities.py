"""An accelerator's capability table and cost figures: the `[accelerator]` section of a target file.

    [accelerator]
    name = "Edge TPU"
    macs_per_cycle = 2048 ...            # the cost model's figures (COST_KEYS)
    [accelerator.ops.conv]               # one table per IR op kind it runs ("depthwise_conv": a conv
    name = "Conv2d"                      #  whose group is its input channel count)
    dtypes = ["int8"]                    # constraints (CHECKS): each failed one gives a reason
    stride_max = [2, 2]

A constraint reads the op as the backend will see it (lowered: channels-last, fused activations),
so the reasons name what the accelerator would be handed. The vocabulary (CHECKS), by what it reads:
  tensors: dtypes, operand_dtypes, same_dtype, max_rank, max_dim, innermost_non_unit, max_bytes,
    batch_max, spatial_area_max, transpose_axes_product_max
  quantization: quantized, per_tensor, same_quant, int32_zero_point_zero, weights_zero_point_zero
  constants: const_operands, bias_max, weights_abs_sum_max
  windows (conv, pools): kernel_max, kernel_area_max, padded_kernel_max, stride_max, dilation_max,
    stride_over_3_valid_only, activations
  reductions: reduced_elements_max, reduced_axis_max, depth_reduction_needs_unit_dim
  others: axis, step_axes (slice), upscale_factors, half_pixel_upscale_factors (resize), attrs
The table is checked when read: an unknown key or a value of the wrong kind is refused in one line
naming the file and the entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgecc.ir.errors import EdgeccError

# the cost model's figures, all positive numbers (compiler/passes/partition.py uses them)
COST_KEYS = {
    "macs_per_cycle": "int8 multiply-accumulates the accelerator retires per cycle",
    "clock_hz": "the accelerator's clock",
    "cpu_cycles_per_mac": "host CPU cycles per int8 multiply-accumulate in edgecc's kernels",
    "cpu_cycles_per_byte": "host CPU cycles per result byte of an op without MACs",
    "cpu_clock_hz": "the host CPU's clock",
    "transfer_bytes_per_cycle": "bytes the accelerator moves per cycle across the boundary",
    "invoke_overhead_cycles": "accelerator cycles one invocation costs before any work",
}
# optional: the most tensors a partition may read and write across its boundary (the Ethos-U driver
# takes 8 base addresses, 3 of them for the weights and the scratch area)
LIMIT_KEYS = {"max_boundary_tensors": "the most input and output tensors one partition may have"}
SECTION_KEYS = {"name", "compiler", "compiler_options", "ops", *COST_KEYS, *LIMIT_KEYS}


def op_key(op) -> str:
    """The table entry an op is looked up under: its kind, or "depthwise_conv" for a conv with one
    group per input channel (accelerators list the two separately)."""
    if op.kind == "conv" and op.attrs.get("group", 1) > 1:
        x = op.operands[0].type
        channels = x.shape[-1] if op.attrs.get("channels_last") else x.shape[1]
        if op.attrs["group"] == channels:
            return "depthwise_conv"
    return op.kind


def _runtime(op):
    return [v for v in op.inputs() if not v.is_const] + list(op.results)


def _kernel(op):
    if op.kind == "conv":
        w = op.operands[1].type.shape
        return list(w[1:-1] if op.attrs.get("channels_last") else w[2:])
    return list(op.attrs.get("kernel_shape", []))


def _over(values, limits):
    """The first (value, limit) pair where value exceeds its limit, the lists aligned at their ends."""
    return next(((v, m) for v, m in zip(reversed(values), reversed(limits)) if v > m), None)


def _dtypes(op, allowed):
    bad = next((v for v in _runtime(op) if v.type.np_dtype.name not in allowed), None)
    return bad and f"{bad.type.np_dtype.name} tensor %{bad.name} ({'/'.join(allowed)} only)"


def _max_rank(op, n):
    bad = next((v for v in _runtime(op) if len(v.type.shape) > n), None)
    return bad and f"rank {len(bad.type.shape)} tensor %{bad.name} (at most {n})"


def _innermost_non_unit(op, n):
    for v in _runtime(op):
        if any(d > 1 for d in v.type.shape[:-n]):
            return f"tensor %{v.name} of shape {list(v.type.shape)}: only the {n} innermost dimensions may exceed 1"
    return None


def _max_dim(op, n):
    bad = next((v for v in _runtime(op) if any(d > n for d in v.type.shape)), None)
    return bad and f"tensor %{bad.name} of shape {list(bad.type.shape)} (each dimension at most {n})"


def _kernel_max(op, limits):
    over = _over(_kernel(op), limits)
    return over and f"kernel {_kernel(op)} (at most {limits})"


def _kernel_area_max(op, n):
    area = 1
    for d in _kernel(op):
        area *= d
    return f"kernel area {area} (at most {n})" if area > n else None


def _attr_max(name):
    def check(op, limits):
        values = list(op.attrs.get(name, []))
        return f"{name} {values} (at most {limits})" if _over(values, limits) else None
    return check


def _activations(op, allowed):
    act = op.attrs.get("activation", "none")
    return None if act in allowed else f"fused activation {act} ({', '.join(allowed)} only)"


def _const_operands(op, indices):
    bad = next((j for j in indices if j < len(op.operands) and op.operands[j] is not None
                and not op.operands[j].is_const), None)
    return None if bad is None else f"operand {bad} is computed at run time (it must be a constant)"


def _per_tensor(op, wanted):
    bad = next((v for v in _runtime(op) if v.type.quant is not None and v.type.quant.per_axis), None)
    return bad and wanted and f"tensor %{bad.name} is quantized per channel (per tensor only)"


def _weights_zero_point_zero(op, wanted):
    for v in op.inputs():
        q = v.type.quant
        if wanted and v.is_const and v.type.dtype in ("i8", "u8") and q is not None and any(q.zero_point):
            return f"weights %{v.name} have a non-zero zero point"
    return None


def _axis(op, allowed):
    if "axis" not in op.attrs:
        return None
    rank = len(op.operands[0].type.shape)
    axis = op.attrs["axis"] - rank if op.attrs["axis"] >= 0 else op.attrs["axis"]
    return None if axis in allowed else f"axis {op.attrs['axis']} of a rank-{rank} tensor (axes {allowed} only)"


def _max_bytes(op, n):
    bad = next((v for v in _runtime(op) if v.type.nbytes > n), None)
    return bad and f"tensor %{bad.name} of {bad.type.nbytes:,} bytes (at most {n:,})"


def _attrs(op, allowed):
    for name, values in allowed.items():
        if name in op.attrs and op.attrs[name] not in values:
            return f"{name} = {op.attrs[name]!r} ({', '.join(map(repr, values))} only)"
    return None


def _weights_and_activations(op):
    """The tensors Vela's generic quantization rule reads: every operand and result but a conv's or
    fully connected layer's bias (operand 2)."""
    biased = op.kind in ("conv", "fully_connected")
    return [v for j, v in enumerate(op.operands) if v is not None and not (biased and j == 2)] + list(op.results)


def _quantized(op, wanted):
    for v in _weights_and_activations(op) if wanted else []:
        q = v.type.quant
        if q is None:
            return f"tensor %{v.name} has no quantization parameters"
        if any(not s > 0 for s in q.scale):
            return f"tensor %{v.name} has a quantization scale {min(q.scale)} (positive only)"
    return None


def _int32_zero_point_zero(op, wanted):
    for v in _runtime(op) if wanted else []:
        if v.type.dtype == "i32" and v.type.quant is not None and any(v.type.quant.zero_point):
            return f"int32 tensor %{v.name} has zero point {v.type.quant.zero_point[0]} (0 only)"
    return None


def _operand_dtypes(op, allowed):
    for index, names in allowed.items():
        j = int(index)
        v = op.operands[j] if j < len(op.operands) else None
        if v is not None and v.type.np_dtype.name not in names:
            return f"operand {j} %{v.name} is {v.type.np_dtype.name} ({'/'.join(names)} only)"
    return None


def _bias_max(op, n):
    bias = op.operands[2] if len(op.operands) > 2 else None
    if bias is None or not bias.is_const or bias.data.size == 0:
        return None
    top = int(bias.data.max())
    return f"bias %{bias.name} holds {top:,} (below {n:,} only)" if top >= n else None


def _weights_abs_sum_max(op, n):
    w = op.operands[1] if len(op.operands) > 1 else None
    if w is None or not w.is_const or w.data.ndim == 0:
        return None
    codes = w.data.astype(np.int64)
    if w.type.quant is not None:
        codes = codes - w.type.quant.broadcast(codes.ndim)[1]
    sums = np.abs(codes).reshape(codes.shape[0], -1).sum(axis=1)  # axis 0: the output channels (OHWI, [N, K])
    worst = int(sums.argmax()) if sums.size else 0
    if sums.size and sums[worst] > n:
        return (f"weights %{w.name}: output channel {worst} has a sum of absolute weights {int(sums[worst]):,} "
                f"(at most {n:,})")
    return None


def _padded(op):
    return any(op.attrs.get("pads", []))


def _stride_over_3_valid_only(op, wanted):
    strides = list(op.attrs.get("strides", []))
    if not wanted or all(s <= 3 for s in strides):
        return None
    if any(d != 1 for d in op.attrs.get("dilations", [])) or _padded(op):
        return (f"strides {strides} with dilations {list(op.attrs.get('dilations', []))} and pads "
                f"{list(op.attrs['pads'])} (a stride above 3 only with dilation 1 and no padding)")
    return None


def _padded_kernel_max(op, limits):
    if _padded(op) and _over(_kernel(op), limits):
        return f"kernel {_kernel(op)} with pads {list(op.attrs['pads'])} (at most {limits} when padded)"
    return None


def _same_quant(op, wanted):
    out = op.results[0].type.quant
    key = (out.scale, out.zero_point) if out else None
    for v in op.inputs() if wanted else []:
        q = v.type.quant
        if ((q.scale, q.zero_point) if q else None) != key:
            return (f"tensor %{v.name} is quantized {_quant_text(q)}, the result {_quant_text(out)} "
                    "(the same scale and zero point only)")
    return None


def _quant_text(q):
    return "not at all" if q is None else f"(scale {q.scale[0]:g}, zero point {q.zero_point[0]})"


def _reduced_axes(op):
    """The input axes a reduction (or a global pool: its spatial axes) reduces."""
    rank = op.operands[0].type.rank
    if op.kind.startswith("global_"):
        return list(range(1, rank - 1)) if op.attrs.get("channels_last") else list(range(2, rank))
    return sorted(a % rank for a in op.attrs.get("axes", [])) if rank else []


def _reduced_elements_max(op, limits):
    x = op.operands[0]
    n = limits.get(x.type.np_dtype.name)
    count = 1
    for a in _reduced_axes(op):
        count *= x.type.shape[a]
    if n is not None and count > n:
        return f"{count:,} reduced elements of {x.type.np_dtype.name} tensor %{x.name} (at most {n:,})"
    return None


def _batch_max(op, n):
    x = op.operands[0]
    if x.type.rank and x.type.shape[0] > n:
        return f"batch {x.type.shape[0]} of tensor %{x.name} (at most {n})"
    return None


def _reduced_axis_max(op, n):
    x = op.operands[0]
    bad = next((a for a in _reduced_axes(op) if x.type.shape[a] > n), None)
    return None if bad is None else f"reduced axis {bad} of tensor %{x.name} has {x.type.shape[bad]} (at most {n})"


def _depth_reduction_needs_unit_dim(op, wanted):
    x = op.operands[0]
    hwc = list(x.type.shape[-3:])
    if wanted and x.type.rank - 1 in _reduced_axes(op) and len(hwc) == 3 and 1 not in hwc:
        return (f"reduction over the channels of tensor %{x.name} of shape {list(x.type.shape)} "
                "(only when H, W or C is 1)")
    return None


def _spatial_area_max(op, n):
    x = op.operands[0]
    area = 1
    for d in x.type.shape[1:-1]:
        area *= d
    return f"tensor %{x.name} of shape {list(x.type.shape)}: area {area:,} (at most {n:,})" if area > n else None


def _transpose_axes_product_max(op, n):
    x = op.operands[0]
    product = 1
    for d in sorted(x.type.shape)[2:]:  # the largest product of rank - 2 dimensions
        product *= d
    if product > n:
        return (f"tensor %{x.name} of shape {list(x.type.shape)}: {product:,} for its {x.type.rank - 2} largest "
                f"dimensions (at most {n:,} for any {x.type.rank - 2})")
    return None


def _step_axes(op, allowed):
    rank = op.operands[0].type.rank
    for axis, step in zip(op.attrs.get("axes", []), op.attrs.get("steps", [])):
        if step < 1:
            return f"step {step} on axis {axis} (positive steps only)"
        if step != 1 and axis - rank not in allowed:
            return f"step {step} on axis {axis} of a rank-{rank} tensor (a step other than 1 on axes {allowed} only)"
    return None


def _resize_factors(op):
    """The H and W factors of an NHWC resize (out / in; (out - 1) / (in - 1) with align_corners), less those
    of an axis that stays 1 (the one axis Vela lets differ); None for an axis whose factor is not a number.
    None altogether when Vela's resize rules do not apply: an input 1x1 in H and W, or no change of shape."""
    x, y = op.operands[0].type.shape, op.result.type.shape
    if len(x) != 4 or x[1] == x[2] == 1 or tuple(x) == tuple(y):
        return None
    align = op.attrs.get("coordinate_transformation_mode") == "align_corners"
    factors = []
    for i, o in zip(x[1:3], y[1:3]):
        if i == o == 1:
            continue
        num, den = (o - 1, i - 1) if align else (o, i)
        factors.append(num / den if den else None)
    return factors


def _factors_reason(op, allowed, when=None):
    """Vela's resize rule: H and W scaled alike, by one of `allowed`."""
    factors = _resize_factors(op)
    if factors is None or (factors and factors[0] in allowed and all(f == factors[0] for f in factors)):
        return None
    how = when or ("with align_corners" if op.attrs.get("coordinate_transformation_mode") == "align_corners"
                   else "")
    shapes = f"{list(op.operands[0].type.shape)} -> {list(op.result.type.shape)}"
    return f"resize {shapes}{' ' + how if how else ''} (H and W scaled alike by one of {allowed} only)"


def _upscale_factors(op, allowed):
    return _factors_reason(op, allowed)


def _half_pixel_upscale_factors(op, allowed):
    a = op.attrs
    if a.get("mode") != "linear" or a.get("coordinate_transformation_mode") != "half_pixel":
        return None
    return _factors_reason(op, allowed, "with half-pixel coordinates")


def _same_dtype(op, wanted):
    out = op.results[0]
    operands = [v for v in op.inputs() if not v.is_const] if wanted else []
    bad = next((v for v in operands if v.type.dtype != out.type.dtype), None)
    return bad and (f"{bad.type.np_dtype.name} tensor %{bad.name} for a {out.type.np_dtype.name} result "
                    "(the same dtype only)")


def _is(kind):
    def ok(value):
        if kind == "int":
            return isinstance(value, int) and not isinstance(value, bool) and value > 0
        if kind == "bool":
            return isinstance(value, bool)
        if kind == "ints":
            return isinstance(value, list) and bool(value) and all(isinstance(v, int) and v > 0 for v in value)
        if kind == "indices":
            return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                   for v in value)
        if kind == "axes":
            return isinstance(value, list) and all(isinstance(v, int) and v < 0 for v in value)
        if kind == "strs":
            return isinstance(value, list) and all(isinstance(v, str) for v in value)
        if kind == "str":
            return isinstance(value, str) and bool(value)
        if kind == "operand_dtypes":
            return isinstance(value, dict) and bool(value) and all(
                isinstance(k, str) and k.isdigit() and isinstance(v, list) and all(isinstance(n, str) for n in v)
                for k, v in value.items())
        if kind == "dtype_ints":
            return isinstance(value, dict) and bool(value) and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values())
        return isinstance(value, dict) and all(isinstance(v, list) for v in value.values())
    return ok


# key: (how its value must look, what the value means, the check: op, value -> reason or None)
CHECKS = {
    "name": ("str", "the operator's name in mapping.txt", None),
    "dtypes": ("strs", "a list of dtype names (numpy's: int8, uint8, int16, float32, ...)", _dtypes),
    "max_rank": ("int", "a positive integer", _max_rank),
    "innermost_non_unit": ("int", "a positive integer", _innermost_non_unit),
    "max_dim": ("int", "a positive integer", _max_dim),
    "kernel_max": ("ints", "a list of positive integers", _kernel_max),
    "kernel_area_max": ("int", "a positive integer", _kernel_area_max),
    "stride_max": ("ints", "a list of positive integers", _attr_max("strides")),
    "dilation_max": ("ints", "a list of positive integers", _attr_max("dilations")),
    "activations": ("strs", "a list of activation names", _activations),
    "const_operands": ("indices", "a list of operand indices", _const_operands),
    "per_tensor": ("bool", "true or false", _per_tensor),
    "weights_zero_point_zero": ("bool", "true or false", _weights_zero_point_zero),
    "axis": ("axes", "a list of negative axes (counted from the last)", _axis),
    "max_bytes": ("int", "a positive integer", _max_bytes),
    "attrs": ("dict", "a table of attribute name = [allowed values]", _attrs),
    "quantized": ("bool", "true or false", _quantized),
    "int32_zero_point_zero": ("bool", "true or false", _int32_zero_point_zero),
    "operand_dtypes": ("operand_dtypes", "a table of operand index = [dtype names]", _operand_dtypes),
    "bias_max": ("int", "a positive integer", _bias_max),
    "weights_abs_sum_max": ("int", "a positive integer", _weights_abs_sum_max),
    "stride_over_3_valid_only": ("bool", "true or false", _stride_over_3_valid_only),
    "padded_kernel_max": ("ints", "a list of positive integers", _padded_kernel_max),
    "same_quant": ("bool", "true or false", _same_quant),
    "reduced_elements_max": ("dtype_ints", "a table of dtype name = positive integer", _reduced_elements_max),
    "batch_max": ("int", "a positive integer", _batch_max),
    "reduced_axis_max": ("int", "a positive integer", _reduced_axis_max),
    "depth_reduction_needs_unit_dim": ("bool", "true or false", _depth_reduction_needs_unit_dim),
    "spatial_area_max": ("int", "a positive integer", _spatial_area_max),
    "transpose_axes_product_max": ("int", "a positive integer", _transpose_axes_product_max),
    "step_axes": ("axes", "a list of negative axes (counted from the last)", _step_axes),
    "upscale_factors": ("ints", "a list of positive integers", _upscale_factors),
    "half_pixel_upscale_factors": ("ints", "a list of positive integers", _half_pixel_upscale_factors),
    "same_dtype": ("bool", "true or false", _same_dtype),
}


@dataclass(frozen=True)
class Capabilities:
    """What an accelerator runs (`ops`: op key -> constraints) and its cost figures."""

    name: str
    ops: dict
    costs: dict
    compiler: str = ""
    path: str = ""
    # options for the accelerator's own compiler (Vela: accelerator_config, system_config, memory_mode)
    compiler_options: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)  # LIMIT_KEYS given in the target file

    def why_not(self, op) -> str | None:
        """None when the accelerator accepts `op`; otherwise the first constraint it fails."""
        key = op_key(op)
        rules = self.ops.get(key)
        if rules is None:
            what = "depthwise conv" if key == "depthwise_conv" else f"op {op.kind}"
            return f"{what} is not supported by the {self.name}"
        for entry, value in rules.items():
            check = CHECKS[entry][2]
            reason = check and check(op, value)
            if reason:
                return reason
        return None

    def op_name(self, op) -> str:
        """The operator's name as the accelerator's tools print it (mapping.txt)."""
        key = op_key(op)
        return self.ops.get(key, {}).get("name") or key


def read_capabilities(section: dict, path: str) -> Capabilities:
    """The target file's [accelerator] section as Capabilities; a malformed entry is an EdgeccError
    naming the file and the entry."""
    def refuse(entry, why):
        raise EdgeccError(f"{path}: [accelerator] {entry}: {why}")

    if not isinstance(section, dict) or not section:
        refuse("", "the target has no accelerator section")
    for key in section:
        if key not in SECTION_KEYS:
            refuse(key, f"unknown key (known: {', '.join(sorted(SECTION_KEYS))})")
    costs = {}
    for key in COST_KEYS:
        value = section.get(key)
        if value is None:
            refuse(key, f"missing ({COST_KEYS[key]})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            refuse(key, f"{value!r} is not a positive number ({COST_KEYS[key]})")
        costs[key] = float(value)
    ops = section.get("ops")
    if not isinstance(ops, dict):
        refuse("ops", "expected a table of op tables")
    for kind, rules in ops.items():
        if not isinstance(rules, dict):
            refuse(f"ops.{kind}", "expected a table of constraints")
        for entry, value in rules.items():
            if entry not in CHECKS:
                refuse(f"ops.{kind}.{entry}", f"unknown constraint (known: {', '.join(CHECKS)})")
            kind_of, meaning, _ = CHECKS[entry]
            if not _is(kind_of)(value):
                refuse(f"ops.{kind}.{entry}", f"{value!r} is not {meaning}")
    limits = {}
    for key in LIMIT_KEYS:
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            refuse(key, f"{value!r} is not an integer of at least 2 ({LIMIT_KEYS[key]})")
        limits[key] = value
    options = section.get("compiler_options", {})
    if not isinstance(options, dict):
        refuse("compiler_options", "expected a table of strings")
    for key, value in options.items():
        if not isinstance(value, str) or not value:
            refuse(f"compiler_options.{key}", f"{value!r} is not a non-empty string")
    name = section.get("name", "accelerator")
    return Capabilities(name=str(name), ops=ops, costs=costs, compiler=str(section.get("compiler", "")), path=path,
                        compiler_options=dict(options), limits=limits)
