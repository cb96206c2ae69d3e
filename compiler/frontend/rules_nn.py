"""Lifting rules for layers: convolutions, matrix products, pooling, normalization, softmax."""
from __future__ import annotations

import numpy as np

from .context import NodeView, float_type, lifts
from .windows import conv_transpose_attrs, window_attrs


def conv_attrs(n: NodeView, x_shape: tuple, w_shape: tuple) -> dict:
    kernel = list(n.attr("kernel_shape", list(w_shape[2:])))
    if kernel != list(w_shape[2:]):
        n.fail(f"kernel_shape {kernel} does not match the weights {list(w_shape)}")
    return {**window_attrs(n, tuple(x_shape[2:]), kernel), "group": int(n.attr("group", 1))}


@lifts("Conv")
def conv(n: NodeView):
    attrs = conv_attrs(n, n.in_shape(0), n.in_shape(1))
    n.emit("conv", [v for v in n.inputs() if v is not None], attrs)


@lifts("ConvTranspose")
def conv_transpose(n: NodeView):
    x, w = n.in_shape(0), n.in_shape(1)
    attrs = conv_transpose_attrs(n, tuple(x[2:]), list(n.attr("kernel_shape", list(w[2:]))))
    n.emit("conv_transpose", [v for v in n.inputs() if v is not None], {**attrs, "group": int(n.attr("group", 1))})


@lifts("MatMul")
def matmul(n: NodeView):
    n.emit("matmul", [n.input(0), n.input(1)])


@lifts("Gemm")
def gemm(n: NodeView):
    attrs = {"alpha": float(n.attr("alpha", 1.0)), "beta": float(n.attr("beta", 1.0)),
             "trans_a": int(n.attr("transA", 0)), "trans_b": int(n.attr("transB", 0))}
    n.emit("gemm", [v for v in n.inputs() if v is not None], attrs)


def pool_attrs(n: NodeView) -> dict:
    x = n.in_shape(0)
    kernel = list(n.attr("kernel_shape"))
    attrs = window_attrs(n, tuple(x[2:]), kernel)
    return {**attrs, "kernel_shape": kernel, "ceil_mode": int(n.attr("ceil_mode", 0))}


@lifts("MaxPool")
def max_pool(n: NodeView):
    attrs = pool_attrs(n)
    attrs["storage_order"] = int(n.attr("storage_order", 0))
    n.emit("max_pool", [n.input(0)], attrs)


@lifts("AveragePool")
def average_pool(n: NodeView):
    attrs = pool_attrs(n)
    attrs["count_include_pad"] = int(n.attr("count_include_pad", 0))
    if any(d != 1 for d in attrs["dilations"]):
        dilated_average_pool(n, attrs)
        return
    del attrs["dilations"]
    n.emit("average_pool", [n.input(0)], attrs)


def window_counts(size: tuple, out: tuple, attrs: dict, slack: list) -> np.ndarray:
    """How many elements each pooling window averages: real input elements, plus explicit padding
    under count_include_pad (never the `slack` ceil_mode adds past the end padding)."""
    nd = len(size)
    pads, strides, dilations, kernel = attrs["pads"], attrs["strides"], attrs["dilations"], attrs["kernel_shape"]
    counted = np.pad(np.ones(size), [(pads[i], pads[nd + i] + slack[i]) for i in range(nd)],
                     constant_values=float(attrs["count_include_pad"]))
    for i in range(nd):
        counted[(slice(None),) * i + (slice(counted.shape[i] - slack[i], None),)] = 0
    counts = np.zeros(out)
    for tap in np.ndindex(*kernel):
        counts += counted[np.ix_(*[tap[i] * dilations[i] + strides[i] * np.arange(out[i]) for i in range(nd)])]
    return counts


def dilated_average_pool(n: NodeView, attrs: dict):
    """The IR's average_pool has no dilations: a dilated one is a depthwise conv with all-one
    weights (summing each window) divided by each window's element count, known at compile time."""
    x = n.in_type(0)
    channels, size, out = x.shape[1], x.shape[2:], n.out_shape()[2:]
    nd, pads = len(size), attrs["pads"]
    reach = [(out[i] - 1) * attrs["strides"][i] + (attrs["kernel_shape"][i] - 1) * attrs["dilations"][i] + 1
             for i in range(nd)]
    slack = [max(0, reach[i] - (size[i] + pads[i] + pads[nd + i])) for i in range(nd)]  # from ceil_mode
    ends = [pads[nd + i] + slack[i] for i in range(nd)]
    ones = n.constant(np.ones((channels, 1, *attrs["kernel_shape"]), np.float32), "ones")
    conv = {"strides": attrs["strides"], "dilations": attrs["dilations"], "pads": attrs["pads"][:nd] + ends,
            "group": channels}
    total = n.helper("conv", [n.input(0), ones], conv, float_type(n.out_shape()))
    counts = n.constant(window_counts(size, out, attrs, slack).astype(np.float32).reshape((1, 1, *out)), "counts")
    n.emit("div", [total, counts])


@lifts("GlobalAveragePool", "GlobalMaxPool")
def global_pool(n: NodeView):
    n.emit("global_average_pool" if n.op_type == "GlobalAveragePool" else "global_max_pool", [n.input(0)])


@lifts("BatchNormalization")
def batch_normalization(n: NodeView):
    eps = float(n.attr("epsilon", 1e-5))
    if int(n.attr("training_mode", 0)):
        batch_normalization_training(n, eps)
    elif n.n_outputs > 1:
        n.fail("outputs beyond Y need training_mode=1")
    else:
        n.emit("batch_normalization", n.inputs()[:5], {"epsilon": eps})


def batch_normalization_training(n: NodeView, eps: float):
    """training_mode=1: normalize with the batch's own mean and (biased) variance, and give the
    running statistics updated with momentum."""
    x, scale, bias, mean, var = n.inputs()[:5]
    shape = x.type.shape
    axes = [a for a in range(len(shape)) if a != 1]
    kept = tuple(1 if a != 1 else d for a, d in enumerate(shape))
    stat = float_type((shape[1],))
    batch_mean = n.helper("reduce_mean", [x], {"axes": axes, "keepdims": 1}, float_type(kept))
    centered = n.helper("sub", [x, batch_mean], {}, float_type(shape))
    squares = n.helper("mul", [centered, centered], {}, float_type(shape))
    batch_var = n.helper("reduce_mean", [squares], {"axes": axes, "keepdims": 1}, float_type(kept))
    batch_mean = n.helper("reshape", [batch_mean], {"shape": [shape[1]]}, stat)
    batch_var = n.helper("reshape", [batch_var], {"shape": [shape[1]]}, stat)
    n.emit("batch_normalization", [x, scale, bias, batch_mean, batch_var], {"epsilon": eps}, types=[n.out_type(0)])
    momentum = float(n.attr("momentum", 0.9))
    keep, take = n.constant(np.float32(momentum), "momentum"), n.constant(np.float32(1 - momentum), "update")
    for i, running, batch in ((1, mean, batch_mean), (2, var, batch_var)):
        if n.has_output(i):
            old = n.helper("mul", [running, keep], {}, stat)
            new = n.helper("add", [old, n.helper("mul", [batch, take], {}, stat)], {}, stat)
            n.bind(i, new, rename=True)


@lifts("InstanceNormalization")
def instance_normalization(n: NodeView):
    n.emit("instance_normalization", n.inputs()[:3], {"epsilon": float(n.attr("epsilon", 1e-5))})


@lifts("LayerNormalization")
def layer_normalization(n: NodeView):
    rank = len(n.in_shape(0))
    attrs = {"axis": n.axis(int(n.attr("axis", -1)), rank), "epsilon": float(n.attr("epsilon", 1e-5))}
    n.emit("layer_normalization", [v for v in n.inputs() if v is not None], attrs)


@lifts("LRN")
def lrn(n: NodeView):
    attrs = {"alpha": float(n.attr("alpha", 1e-4)), "beta": float(n.attr("beta", 0.75)),
             "bias": float(n.attr("bias", 1.0)), "size": int(n.attr("size"))}
    n.emit("lrn", [n.input(0)], attrs)


@lifts("Softmax", "LogSoftmax")
def softmax(n: NodeView):
    """From opset 13 along one axis; before, over the input flattened to 2-D at `axis`
    (reshape to [outer, inner], softmax along 1, reshape back)."""
    kind = "softmax" if n.op_type == "Softmax" else "log_softmax"
    shape = n.in_shape(0)
    rank = len(shape)
    if n.opset >= 13:
        n.emit(kind, [n.input(0)], {"axis": n.axis(int(n.attr("axis", -1)), rank)})
        return
    axis = n.axis(int(n.attr("axis", 1)), rank)
    if axis == rank - 1:
        n.emit(kind, [n.input(0)], {"axis": axis})
        return
    outer = 1
    for d in shape[:axis]:
        outer *= d
    flat = (outer, n.out_type().size // max(outer, 1))
    x = n.emit("reshape", [n.input(0)], {"shape": list(flat)}, types=[float_type(flat)], bind=False,
               tag="flatten").result
    y = n.emit(kind, [x], {"axis": 1}, types=[float_type(flat)], bind=False).result
    n.emit("reshape", [y], {"shape": list(shape)}, tag="unflatten")
