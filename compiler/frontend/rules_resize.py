"""Lifting rules for Resize (the forms of opsets 10 to 19) and the deprecated Upsample.

The IR's resize takes one scale per axis. When the model gives `sizes`, the scale is the one
ONNX itself uses for the coordinate transform: size / input size per axis ("stretch"), or the
single smallest / largest of those ratios under keep_aspect_ratio_policy not_larger /
not_smaller. `axes` (opset 18) is expanded to every axis; roi only matters for
tf_crop_and_resize and is expanded the same way.

Scales or roi computed at run time (a graph input, say) become operands of the IR's resize, with
`axes` saying which axes they give. The output shape must still be static: inferred, or declared
by the model (make_static takes the declaration). Each is an operand only where the coordinate
transform reads it: roi only for tf_crop_and_resize, scales not for align_corners or
tf_crop_and_resize (which map the output size onto the input's).
"""
from __future__ import annotations

import numpy as np
from onnx import helper
from onnx.reference import ReferenceEvaluator

from .context import NodeView, float_type, lifts


MODES = ("nearest", "linear", "cubic")
COORDINATES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_half_pixel_for_nn", "tf_crop_and_resize")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def expand(values, axes, rank, fill):
    full = [fill] * rank
    for a, v in zip(axes, values):
        full[a] = v
    return full


def runtime_scales(n: NodeView) -> bool:
    """Scales are a value computed at run time (not a constant, not absent)."""
    return n.has_input(2) and not n.is_const(2)


def resize_scales(n: NodeView, shape: tuple, axes: list) -> list:
    rank = len(shape)
    if runtime_scales(n):  # the attribute records the ratio of the static shapes; the operand decides
        out = n.out_shape()
        return [o / i if i else 1.0 for o, i in zip(out, shape)]
    scales = n.const(2, "scales")
    if scales is not None and np.asarray(scales).size:
        return expand([float(s) for s in np.asarray(scales).reshape(-1)], axes, rank, 1.0)
    sizes = n.const_ints(3, "sizes")
    if not sizes:
        n.fail("Resize needs scales or sizes")
    ratios = [sizes[j] / shape[a] for j, a in enumerate(axes)]
    policy = n.attr("keep_aspect_ratio_policy", "stretch")
    if policy == "not_larger":
        ratios = [min(ratios)] * len(axes)
    elif policy == "not_smaller":
        ratios = [max(ratios)] * len(axes)
    elif policy != "stretch":
        n.unsupported("keep_aspect_ratio_policy", policy)
    return expand(ratios, axes, rank, 1.0)


@lifts("Resize")
def resize(n: NodeView):
    if n.opset < 11:
        legacy_resize(n)
        return
    shape = n.in_shape(0)
    rank = len(shape)
    axes = [n.axis(a, rank) for a in n.attr("axes", list(range(rank)))]
    if int(n.attr("antialias", 0)):
        if runtime_scales(n):
            n.fail("antialiased Resize needs constant scales (edgecc turns it into products with constant "
                   "matrices); these are computed at run time")
        antialiased_resize(n, resize_scales(n, shape, axes))
        return
    attrs = {
        "mode": n.choice("mode", "nearest", MODES),
        "coordinate_transformation_mode": n.choice("coordinate_transformation_mode", "half_pixel", COORDINATES),
        "nearest_mode": n.choice("nearest_mode", "round_prefer_floor", NEAREST),
        "cubic_coeff_a": float(n.attr("cubic_coeff_a", -0.75)),
        "exclude_outside": int(n.attr("exclude_outside", 0)),
        "extrapolation_value": float(n.attr("extrapolation_value", 0.0)),
        "scales": resize_scales(n, shape, axes),
    }
    ctm = attrs["coordinate_transformation_mode"]
    roi = scales = None
    if ctm == "tf_crop_and_resize":
        if n.has_input(1) and not n.is_const(1):
            roi = runtime_operand(n, 1, "roi", 2 * len(axes))
            attrs["roi"] = [0.0] * rank + [1.0] * rank
        else:
            values = [float(r) for r in np.asarray(n.const(1, "roi")).reshape(-1)]
            k = len(axes)
            attrs["roi"] = expand(values[:k], axes, rank, 0.0) + expand(values[k:], axes, rank, 1.0)
    if runtime_scales(n) and ctm not in ("align_corners", "tf_crop_and_resize"):
        scales = runtime_operand(n, 2, "scales", len(axes))
    if roi is None and scales is None:
        n.emit("resize", [n.input(0)], attrs)
    else:
        n.emit("resize", [n.input(0), roi] + ([scales] if scales is not None else []), dict(attrs, axes=axes))


def runtime_operand(n: NodeView, i: int, what: str, length: int):
    """Input i (roi or scales) as a run-time operand: float32, one entry per listed axis (two for roi)."""
    t = n.in_type(i)
    if t.dtype != "f32" or t.shape != (length,):
        n.fail(f"{what} computed at run time must be float32 [{length}], got {t.dtype} {list(t.shape)}")
    return n.input(i)


def axis_matrix(n: NodeView, size_in: int, size_out: int, scale: float) -> np.ndarray:
    """[size_in, size_out]: how one axis of this Resize maps input to output positions, from the
    ONNX reference Resize run on the identity (each row a unit input along that axis)."""
    attrs = {k: v for k, v in n.attrs.items() if k not in ("axes", "keep_aspect_ratio_policy")}
    if n.attr("keep_aspect_ratio_policy", "stretch") == "stretch" and not n.is_const(2):
        inputs, feed = ["x", "", "", "sizes"], {"sizes": np.array([size_in, size_out], np.int64)}
    else:
        inputs, feed = ["x", "", "scales"], {"scales": np.array([1.0, scale], np.float32)}
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    feed["x"] = np.eye(size_in, dtype=np.float32)
    m = ReferenceEvaluator(node, opsets={"": n.opset}).run(None, feed)[0]
    if m.shape != (size_in, size_out):
        n.fail(f"antialiased resizing to {size_out} along an axis of {size_in} is not supported")
    return m


def antialiased_resize(n: NodeView, scales: list):
    """The IR's resize has no antialias. Resizing is linear in the data and separable, so each
    resized axis is a product with a constant matrix: move the axis last, matmul, move it back."""
    if n.attr("coordinate_transformation_mode") == "tf_crop_and_resize" or not n.out_type().is_float:
        n.unsupported("antialias", 1)
    x, shape, out = n.input(0), list(n.in_shape(0)), n.out_shape()
    rank = len(shape)
    for a in range(rank):
        if shape[a] == out[a] and scales[a] == 1.0:
            continue
        perm = [d for d in range(rank) if d != a] + [a]
        if a != rank - 1:
            x = n.helper("transpose", [x], {"perm": perm}, float_type([shape[d] for d in perm]))
        m = n.constant(axis_matrix(n, shape[a], out[a], scales[a]), f"axis{a}")
        shape[a] = out[a]
        x = n.helper("matmul", [x, m], {}, float_type([shape[d] for d in perm]))
        if a != rank - 1:
            x = n.helper("transpose", [x], {"perm": [perm.index(d) for d in range(rank)]}, float_type(shape))
    n.bind(0, x, rename=True)


@lifts("Upsample")
def upsample(n: NodeView):
    legacy_resize(n)


def legacy_resize(n: NodeView):
    """Upsample (deprecated since opset 10) and opset-10 Resize: scales from input 1, asymmetric
    coordinates, and onnxruntime's nearest pixel for these versions (floor when enlarging, ceil
    when shrinking)."""
    mode = n.choice("mode", "nearest", ("nearest", "linear"))
    scales = [float(s) for s in np.asarray(n.const(1, "scales")).reshape(-1)]
    if all(s >= 1 for s in scales):
        nearest = "floor"
    elif all(s <= 1 for s in scales):
        nearest = "ceil"
    else:
        n.fail(f"scales {scales} both enlarge and shrink, which opset-10 nearest resizing does per axis")
    n.emit("resize", [n.input(0)], {"mode": mode, "coordinate_transformation_mode": "asymmetric",
                                    "nearest_mode": nearest, "scales": scales})
