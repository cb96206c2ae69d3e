"""An accelerator's capability table and cost figures: the `[accelerator]` section of a target file.

    [accelerator]
    name = "Edge TPU"
    macs_per_cycle = 2048 ...            # the cost model's figures (COST_KEYS)
    [accelerator.ops.conv]               # one table per IR op kind it runs ("depthwise_conv": a conv
    name = "Conv2d"                      #  whose group is its input channel count)
    dtypes = ["int8"]                    # constraints (CHECKS): each failed one gives a reason
    stride_max = [2, 2]

A constraint reads the op as the backend will see it (lowered: channels-last, fused activations),
so the reasons name what the accelerator would be handed. The table is checked when read: an unknown
key or a value of the wrong kind is refused in one line naming the file and the entry.
"""
from __future__ import annotations

from dataclasses import dataclass

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
SECTION_KEYS = {"name", "compiler", "ops", *COST_KEYS}


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
}


@dataclass(frozen=True)
class Capabilities:
    """What an accelerator runs (`ops`: op key -> constraints) and its cost figures."""

    name: str
    ops: dict
    costs: dict
    compiler: str = ""
    path: str = ""

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
    name = section.get("name", "accelerator")
    return Capabilities(name=str(name), ops=ops, costs=costs, compiler=str(section.get("compiler", "")), path=path)
