"""Attributes within their op's domain, for the default-domain ops where a bad value would otherwise
reach shape inference (whose messages then blame another node) or lifting (which divides by it):

- the window ops (convolutions, pools): kernel_shape, strides and dilations positive, pads and
  output_padding not negative, their lengths matching the kernel's rank (and kernel_shape the
  weights'), auto_pad one of ONNX's four and not with non-zero pads, group positive and dividing
  the channels;
- flags that ONNX defines as 0 or 1 (allowzero, keepdims, ceil_mode, ...);
- axes and permutations within the rank of the input they apply to, where that rank is known.

check_attributes runs twice: on the file (ranks of graph inputs and initializers known), and again
after shape inference (every rank known, the channels of the convolutions' inputs too).
"""
from __future__ import annotations

import onnx
from onnx import helper

from .names import DEFAULT_DOMAINS, refuse

WINDOW_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool"}
GROUPED_OPS = {"Conv": 1, "ConvTranspose": 1, "ConvInteger": 1, "QLinearConv": 3}  # -> the weights' input index
AUTO_PADS = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}
FLAGS = {"allowzero", "keepdims", "ceil_mode", "count_include_pad", "transA", "transB", "select_last_index",
         "storage_order", "exclusive", "reverse", "noop_with_empty_axes", "largest", "sorted", "upper", "fmod",
         "saturate", "training_mode", "center_point_box", "detect_negative", "detect_positive"}
# axis attributes in [-rank, rank - 1] of input 0 (Flatten's may also be rank)
AXIS_OPS = {"Softmax", "LogSoftmax", "Hardmax", "Concat", "Gather", "GatherElements", "Split", "LayerNormalization",
            "ArgMax", "ArgMin", "Flatten"}


def known_shapes(model: onnx.ModelProto, inferred: bool) -> dict:
    """Value name -> its dims as far as known (None for a symbolic one), from initializers and graph
    inputs, and once `inferred`, from the value infos and outputs too (before, they may be stale); a
    dequantized initializer has the initializer's dims."""
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    infos = list(model.graph.value_info) + list(model.graph.output) if inferred else []
    for vi in list(model.graph.input) + infos:
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape") and vi.name not in shapes:
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input and node.input[0] in shapes and node.output:
            shapes.setdefault(node.output[0], shapes[node.input[0]])
    return shapes


def check_attribute_types(node: onnx.NodeProto, opset: int, file: str) -> None:
    """Each attribute the op's schema declares has the declared type (an INT where INTS is due, say)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except (onnx.defs.SchemaError, TypeError):  # an unknown op, or an opset no int32 holds: refused elsewhere
        return
    for a in node.attribute:
        declared = schema.attributes.get(a.name)
        given = onnx.AttributeProto.AttributeType.Name(a.type)
        if declared is not None and declared.type.name != given:
            raise refuse(f"attribute {a.name} is {given}; {node.op_type} takes {declared.type.name}", file, node)


def check_attributes(model: onnx.ModelProto, file: str, inferred: bool = False) -> None:
    """Refuse the first attribute out of its op's domain; `inferred`: shape inference has run."""
    shapes = known_shapes(model, inferred)
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 0)
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            continue
        check_attribute_types(node, opset, file)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        for name in FLAGS & attrs.keys():
            if attrs[name] not in (0, 1):
                raise refuse(f"attribute {name}={attrs[name]!r} must be 0 or 1", file, node)
        if node.op_type in WINDOW_OPS:
            check_window(node, attrs, shapes, file)
        if node.op_type in AXIS_OPS and "axis" in attrs:
            check_axis(node, attrs["axis"], shapes, file)
        if node.op_type == "Transpose" and "perm" in attrs:
            rank = rank_of(node.input[0], shapes)
            if rank is not None and sorted(attrs["perm"]) != list(range(rank)):
                raise refuse(f"perm={list(attrs['perm'])} is not a permutation of the input's {rank} axes", file, node)


def rank_of(name: str, shapes: dict):
    return len(shapes[name]) if name in shapes else None


def check_axis(node: onnx.NodeProto, axis, shapes: dict, file: str) -> None:
    rank = rank_of(node.input[0], shapes) if node.input else None
    if rank is None or not isinstance(axis, int):
        return
    top = rank if node.op_type == "Flatten" else rank - 1
    if not -rank <= axis <= top:
        raise refuse(f"axis={axis} is out of range for an input of rank {rank}", file, node)


def check_window(node: onnx.NodeProto, attrs: dict, shapes: dict, file: str) -> None:
    for name in ("kernel_shape", "strides", "dilations"):
        if name in attrs and any(v <= 0 for v in attrs[name]):
            raise refuse(f"attribute {name}={list(attrs[name])} must be positive", file, node)
    for name in ("pads", "output_padding"):
        if name in attrs and any(v < 0 for v in attrs[name]):
            raise refuse(f"attribute {name}={list(attrs[name])} must not be negative", file, node)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode(errors="replace") if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in AUTO_PADS:
        raise refuse(f"attribute auto_pad='{auto_pad}' is none of {', '.join(sorted(AUTO_PADS))}", file, node)
    if auto_pad != "NOTSET" and any(attrs.get("pads", [])):
        raise refuse(f"auto_pad='{auto_pad}' and pads={list(attrs['pads'])} are both given; ONNX allows one", file, node)
    weights = shapes.get(node.input[GROUPED_OPS[node.op_type]]) \
        if node.op_type in GROUPED_OPS and len(node.input) > GROUPED_OPS[node.op_type] else None
    spatial = len(attrs["kernel_shape"]) if "kernel_shape" in attrs else (len(weights) - 2 if weights else None)
    if spatial is not None:
        for name, length in (("strides", spatial), ("dilations", spatial), ("pads", 2 * spatial)):
            if name in attrs and len(attrs[name]) != length:
                raise refuse(f"attribute {name}={list(attrs[name])} should have {length} values for a "
                             f"{spatial}-d window", file, node)
    if node.op_type in GROUPED_OPS:
        check_groups(node, attrs, weights, shapes, file)
    kernel = list(attrs["kernel_shape"]) if "kernel_shape" in attrs else (weights[2:] if weights else None)
    x = shapes.get(node.input[0]) if node.input else None
    if kernel and x and len(x) == len(kernel) + 2 and None not in x[2:] and node.op_type != "ConvTranspose":
        check_fit(node, attrs, kernel, x[2:], auto_pad, file)


def check_fit(node: onnx.NodeProto, attrs: dict, kernel: list, spatial: list, auto_pad: str, file: str) -> None:
    """Each spatial axis of the input, padded, at least as long as the (dilated) window: else the op has
    no output there (onnx's inference may still say 1, from a division rounded toward zero)."""
    dilations = list(attrs.get("dilations", [1] * len(kernel)))
    pads = list(attrs.get("pads", [0] * 2 * len(kernel))) if auto_pad == "NOTSET" else [0] * 2 * len(kernel)
    for axis, (n, k, d) in enumerate(zip(spatial, kernel, dilations)):
        padded = n + pads[axis] + pads[axis + len(kernel)]
        if n == 0:
            raise refuse(f"the input's spatial dims {spatial} are empty on axis {axis}: no window fits", file, node)
        if auto_pad in ("NOTSET", "VALID") and padded < d * (k - 1) + 1:
            raise refuse(f"the window {kernel} (dilations {dilations}) is larger than the input's spatial dims "
                         f"{spatial} with their padding", file, node)


def check_groups(node: onnx.NodeProto, attrs: dict, weights, shapes: dict, file: str) -> None:
    """group positive, dividing the weights' output channels (a transposed convolution's input
    channels), and the input's channels those of the weights times group."""
    group = attrs.get("group", 1)
    if group < 1:
        raise refuse(f"attribute group={group} must be positive", file, node)
    if not weights or None in weights:
        return
    if len(weights) < 3:
        raise refuse(f"weights of shape {list(weights)}: a convolution's have an output and an input channel "
                     f"axis and at least one spatial axis", file, node)
    if "kernel_shape" in attrs and list(attrs["kernel_shape"]) != weights[2:]:
        raise refuse(f"kernel_shape={list(attrs['kernel_shape'])} does not match the weights' {weights[2:]}", file, node)
    if weights[0] % group:
        raise refuse(f"group={group} does not divide the weights' {weights[0]} channels", file, node)
    x = shapes.get(node.input[0])
    channels = x[1] if x and len(x) > 1 else None
    per_group = weights[0] if node.op_type == "ConvTranspose" else weights[1] * group
    if channels is not None and channels != per_group:
        raise refuse(f"the input has {channels} channels; the weights {weights} with group={group} take {per_group}",
                     file, node)
