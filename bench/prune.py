#!/usr/bin/env python3
"""Magnitude pruning of an ONNX model's weights: N:M, unstructured, or whole channels end to end.

usage: python bench/prune.py MODEL.onnx OUT.onnx [--pattern 2:4 | --density 0.2 | --channels 0.5]

For every Conv, MatMul and Gemm whose weights are an initializer (directly, or through a
DequantizeLinear of one, as weight-quantized and QDQ models keep them), in every M consecutive weights
along the input channels (a conv's axis 1, at each output channel and kernel position; K of a matrix
product) all but the N largest in magnitude become zero (the zero point, for quantized weights).
Layers with fewer than M input channels per group (depthwise convs, a first conv on 1 or 3 channels)
are left dense. The result is what NVIDIA's ASP or ModelOpt leave for 2:4 sparse tensor cores.

--density D: in every such layer, all but the fraction D of weights largest in magnitude become zero
(torch.nn.utils.prune's l1_unstructured, per layer). --channels F: in every pointwise conv (1x1, one
group, 16 input channels or more) the fraction F of output channels with the smallest L1 norm is
zeroed with its bias, and so are those channels of the depthwise convs that read them (through
activations and Q/DQ), so they are zero end to end, as structured pruning leaves a network.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _weight_initializer(model, node):
    """(the initializer holding node's weights, its zero point or 0) or None."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    name = node.input[1]
    if name in inits:
        return inits[name], 0
    dq = producers.get(name)
    if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in inits:
        zp = numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 and dq.input[2] in inits else 0
        if np.any(zp != 0):
            return None  # a per-channel zero point: rare for weights, left dense
        return inits[dq.input[0]], 0
    return None


def _reduction_axis(node, rank: int) -> int | None:
    if node.op_type == "Conv":
        return 1
    if node.op_type == "MatMul":
        return rank - 2 if rank >= 2 else None
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 1 if trans_b else 0
    return None


def prune_n_m(w: np.ndarray, axis: int, n: int, m: int, zero=0) -> np.ndarray:
    """w with all but the n largest |w| of every m consecutive weights along `axis` set to `zero`."""
    moved = np.moveaxis(np.asarray(w), axis, -1)
    k = moved.shape[-1]
    usable = k // m * m
    if usable == 0:
        return np.asarray(w)
    groups = moved[..., :usable].reshape(moved.shape[:-1] + (usable // m, m))
    order = np.argsort(-np.abs(groups.astype(np.float64)), axis=-1, kind="stable")
    drop = np.zeros(groups.shape, bool)
    np.put_along_axis(drop, order[..., n:], True, axis=-1)
    pruned = moved.copy()
    pruned[..., :usable] = np.where(drop, zero, groups).reshape(moved.shape[:-1] + (usable,))
    if usable < k:  # a ragged tail of fewer than m keeps at most n as well
        tail = pruned[..., usable:]
        torder = np.argsort(-np.abs(tail.astype(np.float64)), axis=-1, kind="stable")
        tdrop = np.zeros(tail.shape, bool)
        np.put_along_axis(tdrop, torder[..., n:], True, axis=-1)
        pruned[..., usable:] = np.where(tdrop, zero, tail)
    return np.moveaxis(pruned, -1, axis)


def prune_model(model, n: int = 2, m: int = 4):
    """The model with its weights pruned N:M in place; returns the pruned layers' node names."""
    from onnx import numpy_helper

    pruned = []
    for node in model.graph.node:
        found = _weight_initializer(model, node) if node.op_type in ("Conv", "MatMul", "Gemm") else None
        if found is None:
            continue
        init, zero = found
        w = numpy_helper.to_array(init)
        axis = _reduction_axis(node, w.ndim)
        if axis is None or w.shape[axis] < m:
            continue
        init.CopyFrom(numpy_helper.from_array(prune_n_m(w, axis, n, m, zero).astype(w.dtype), init.name))
        pruned.append(node.name or node.output[0])
    return pruned


def _pruned_layers(model, min_inputs: int):
    """(node, weight initializer, zero point, reduction axis) of every prunable layer."""
    from onnx import numpy_helper

    for node in model.graph.node:
        found = _weight_initializer(model, node) if node.op_type in ("Conv", "MatMul", "Gemm") else None
        if found is None:
            continue
        init, zero = found
        axis = _reduction_axis(node, len(init.dims))
        if axis is None:
            continue
        w = numpy_helper.to_array(init)
        per_output = w.size // (w.shape[1 - axis] if node.op_type != "Conv" else w.shape[0])
        if per_output >= min_inputs:
            yield node, init, zero, axis


def prune_unstructured(model, density: float, min_inputs: int = 16) -> list:
    """All but the `density` fraction of largest-magnitude weights zeroed, per layer with at least
    `min_inputs` inputs per output (the first conv of an image model usually has fewer)."""
    from onnx import numpy_helper

    pruned = []
    for node, init, zero, _ in _pruned_layers(model, min_inputs):
        w = numpy_helper.to_array(init)
        keep = max(1, int(round(density * w.size)))
        order = np.argsort(-np.abs(w.astype(np.float64)).reshape(-1), kind="stable")
        flat = np.full(w.size, zero, w.dtype)
        flat[order[:keep]] = w.reshape(-1)[order[:keep]]
        init.CopyFrom(numpy_helper.from_array(flat.reshape(w.shape), init.name))
        pruned.append(node.name or node.output[0])
    return pruned


def _initializer_of(model, name):
    """The initializer behind tensor `name` (itself, or the input of the DequantizeLinear making it)."""
    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    if name in inits:
        return inits[name]
    dq = producers.get(name)
    return inits.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None


def _zero_rows(model, name, rows) -> None:
    from onnx import numpy_helper

    init = _initializer_of(model, name)
    if init is None:
        return
    a = numpy_helper.to_array(init).copy()
    a[rows] = 0
    init.CopyFrom(numpy_helper.from_array(a, init.name))


def zero_channels(model, fraction: float = 0.5, min_inputs: int = 16) -> list:
    """Zero the `fraction` of weakest output channels of every pointwise conv, end to end (see above)."""
    from onnx import numpy_helper

    readers = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    passing = ("Relu", "Clip", "QuantizeLinear", "DequantizeLinear", "LeakyRelu", "MaxPool", "AveragePool")
    pruned = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        init = _initializer_of(model, node.input[1])
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if init is None or group != 1 or len(init.dims) != 4 or tuple(init.dims[2:]) != (1, 1) or init.dims[1] < min_inputs:
            continue
        w = numpy_helper.to_array(init).astype(np.float64)
        rows = np.argsort(np.abs(w).reshape(w.shape[0], -1).sum(axis=1), kind="stable")[:int(w.shape[0] * fraction)]
        _zero_rows(model, node.input[1], rows)
        if len(node.input) > 2:
            _zero_rows(model, node.input[2], rows)
        frontier = list(node.output)
        while frontier:  # the depthwise convs that read those channels: the same channels zeroed
            for user in readers.get(frontier.pop(), []):
                if user.op_type in passing:
                    frontier += list(user.output)
                elif user.op_type == "Conv" and next((a.i for a in user.attribute if a.name == "group"), 1) > 1:
                    _zero_rows(model, user.input[1], rows)
                    if len(user.input) > 2:
                        _zero_rows(model, user.input[2], rows)
        pruned.append(node.name or node.output[0])
    return pruned


def main(argv=None) -> int:
    import onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--pattern", default="2:4", help="N:M along the input channels (default 2:4)")
    how.add_argument("--density", type=float, help="unstructured: the fraction of weights kept per layer")
    how.add_argument("--channels", type=float, help="the fraction of pointwise output channels zeroed end to end")
    args = ap.parse_args(argv)
    model = onnx.load(args.model)
    if args.density is not None:
        layers, what = prune_unstructured(model, args.density), f"to density {args.density}"
    elif args.channels is not None:
        layers, what = zero_channels(model, args.channels), f"{args.channels:.0%} of channels zeroed"
    else:
        n, m = (int(x) for x in args.pattern.split(":"))
        layers, what = prune_model(model, n, m), f"{n}:{m}"
    onnx.save(model, args.out)
    print(f"{len(layers)} layers pruned, {what}: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
