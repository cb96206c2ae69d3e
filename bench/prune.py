#!/usr/bin/env python3
"""Magnitude pruning of an ONNX model's weights in an N:M pattern along the reduction axis.

usage: python bench/prune.py MODEL.onnx OUT.onnx [--pattern 2:4]

For every Conv, MatMul and Gemm whose weights are an initializer (directly, or through a
DequantizeLinear of one, as weight-quantized and QDQ models keep them), in every M consecutive weights
along the input channels (a conv's axis 1, at each output channel and kernel position; K of a matrix
product) all but the N largest in magnitude become zero (the zero point, for quantized weights).
Layers with fewer than M input channels per group (depthwise convs, a first conv on 1 or 3 channels)
are left dense. The result is what NVIDIA's ASP or ModelOpt leave for 2:4 sparse tensor cores.
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


def main(argv=None) -> int:
    import onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--pattern", default="2:4")
    args = ap.parse_args(argv)
    n, m = (int(x) for x in args.pattern.split(":"))
    model = onnx.load(args.model)
    layers = prune_model(model, n, m)
    onnx.save(model, args.out)
    print(f"{len(layers)} layers pruned {n}:{m}: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
