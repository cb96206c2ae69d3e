"""remove_zero_channels: channels that are zero end to end leave the graph, exactly.

An output channel of a conv (one group) or fully_connected layer whose weights are all zero (the zero
point, when quantized) and whose bias is zero computes 0 for every input, and 0 stays 0 through the
layer's fused activation and requantization (0 is a code of every activation's range). Followed
downstream through the ops that keep a channel that is 0 at 0 (relu, clip around 0, leaky_relu,
max / average / global pools, a depthwise conv whose weights or bias leave that channel at 0, a
reshape that only drops unit dimensions) to the convs and fully_connected layers that read it, the
channel is removed everywhere at once: from the producer's weights and bias, from every op on the
way, and as input channels from the readers' weights, where it added 0 times a weight (padding
included: a conv pads with real 0, which is what the channel holds). The numbers computed are the
same, with fewer MACs, less flash and smaller tensors.

A layer whose weights are all zero computes its bias whatever its input: it becomes a constant
(when it is not a graph output), which constant folding and the memory plan then take care of.

Left alone, and reported in graph.meta["zero_channels"]["kept"]: channels read by anything else
(a residual add, a concat, a graph output, a layout change), and channels that are a non-zero
constant (a zero filter with a bias): folding those into the reader's bias is exact only where the
reader's padding cannot tell, which this pass does not attempt.

Runs before layout (channels-first shapes); `--sparsity off` (option "sparsity") turns it off.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgecc.ir.analysis import macs
from edgecc.ir.types import Quant

from . import register

KEEP_ZERO = ("relu", "max_pool", "average_pool", "global_average_pool", "global_max_pool")
ZERO_PRESERVING_ACTIVATIONS = ("none", "relu", "relu6", "leaky_relu")


def _name(op) -> str:
    return op.name or op.results[0].name


def _const(v) -> bool:
    return v is not None and v.is_const


def _activation_keeps_zero(op) -> bool:
    act = op.attrs.get("activation", "none")
    if act == "clip":
        lo, hi = (list(op.attrs.get("act_params", [])) + [0.0, 0.0])[:2]
        return lo <= 0.0 <= hi
    return act in ZERO_PRESERVING_ACTIVATIONS


def _zero_codes(v) -> np.ndarray:
    """Boolean array: where v's stored values are real zeros."""
    q = v.type.quant
    if q is None:
        return v.data == 0
    return v.data.astype(np.int64) == _zero_point(q, v.type.rank)


def _zero_point(q: Quant, rank: int) -> np.ndarray:
    zp = np.asarray(q.zero_point, np.int64)
    if q.axis is None:
        return zp.reshape(())
    shape = [1] * rank
    shape[q.axis] = -1
    return zp.reshape(shape)


def _producer(op) -> bool:
    if op.kind not in ("conv", "fully_connected") or op.attrs.get("channels_last") or len(op.results) != 1:
        return False
    if op.kind == "conv" and op.attrs.get("group", 1) != 1:
        return False
    w = op.operands[1]
    b = op.operands[2] if len(op.operands) > 2 else None
    return _const(w) and (b is None or _const(b)) and _activation_keeps_zero(op)


def zero_output_channels(op) -> np.ndarray:
    """Boolean [M]: output channels whose weights and bias are all zero."""
    w = op.operands[1]
    b = op.operands[2] if len(op.operands) > 2 else None
    zero = _zero_codes(w).reshape(w.type.shape[0], -1).all(axis=1)
    if b is not None:
        zero &= _zero_codes(b).reshape(-1)
    return zero


def _depthwise(op) -> bool:
    if op.kind != "conv" or op.attrs.get("channels_last"):
        return False
    c = op.operands[0].type.shape[1]
    return op.attrs.get("group", 1) == c == op.result.type.shape[1] and _const(op.operands[1])


def _depthwise_keeps_zero(op, zero) -> bool:
    """A depthwise channel fed 0 computes its bias: 0 where the bias is 0 (or absent)."""
    b = op.operands[2] if len(op.operands) > 2 else None
    if b is not None and (not _const(b) or not _zero_codes(b).reshape(-1)[zero].all()):
        return False
    return _activation_keeps_zero(op)


def _flattening(op) -> bool:
    """A reshape [1, C, 1, ...] -> [1, C]: the channel axis stays the channel axis."""
    s, t = op.operands[0].type.shape, op.result.type.shape
    return len(s) >= 2 and len(t) == 2 and s[0] == t[0] == 1 and s[1] == t[1] and all(d == 1 for d in s[2:])


def _reader(op, v) -> bool:
    """Reads v as the input channels of its weights (conv of one group, fully_connected)."""
    if op.operands[0] is not v or any(x is v for x in op.operands[1:]) or op.attrs.get("channels_last"):
        return False
    if op.kind == "conv":
        return op.attrs.get("group", 1) == 1 and _const(op.operands[1])
    return op.kind == "fully_connected" and _const(op.operands[1]) and v.type.rank == 2


def follow(v, zero, users, outputs):
    """(ops on the way, readers) when every use of v's zero channels ends in a reader, else None."""
    on_way, readers, frontier = [], [], [v]
    while frontier:
        val = frontier.pop()
        if val in outputs or not users.get(val):
            return None
        for op in users[val]:
            if _reader(op, val):
                readers.append(op)
            elif op.operands[0] is val and len(op.results) == 1 and (
                    op.kind in KEEP_ZERO or (op.kind == "clip" and _clip_keeps_zero(op)) or
                    (op.kind == "reshape" and _flattening(op)) or
                    (_depthwise(op) and _depthwise_keeps_zero(op, zero))) and \
                    not op.attrs.get("channels_last"):
                on_way.append(op)
                frontier.append(op.result)
            else:
                return None
    return on_way, readers


def _clip_keeps_zero(op) -> bool:
    lo, hi = op.attrs.get("min", float("-inf")), op.attrs.get("max", float("inf"))
    return lo <= 0.0 <= hi


def _sliced(graph, v, keep, axis):
    """A new constant: v's data (and its per-axis quantization along `axis`) restricted to `keep`."""
    data = np.take(v.data, keep, axis=axis)
    q = v.type.quant
    if q is not None and q.axis == axis:
        q = Quant(tuple(np.asarray(q.scale)[keep].tolist()), tuple(np.asarray(q.zero_point)[keep].tolist()), axis)
    return graph.add_constant(graph.unique_name(v.name), data, replace(v.type, shape=data.shape, quant=q))


def _narrow(v, count):
    """v's type with `count` channels (axis 1)."""
    shape = list(v.type.shape)
    shape[1] = count
    v.type = replace(v.type, shape=tuple(shape))


def remove(graph, producer, zero, on_way, readers) -> int:
    """Remove the zero channels along the chain; the MACs removed."""
    keep = np.flatnonzero(~zero)
    before = sum(macs(op) for op in [producer, *on_way, *readers])
    for op in (producer, *[o for o in on_way if o.kind == "conv"]):
        op.operands[1] = _sliced(graph, op.operands[1], keep, 0)
        if len(op.operands) > 2 and op.operands[2] is not None:
            op.operands[2] = _sliced(graph, op.operands[2], keep, 0)
        if op is not producer:
            op.attrs["group"] = len(keep)
    for op in (producer, *on_way):
        _narrow(op.result, len(keep))
        if op.kind == "reshape":
            op.attrs["shape"] = [1, len(keep)]
    for op in readers:
        op.operands[1] = _sliced(graph, op.operands[1], keep, 1)
    return before - sum(macs(op) for op in [producer, *on_way, *readers])


def _weights_all_zero(op) -> bool:
    return op.kind in ("conv", "fully_connected") and len(op.results) == 1 and _const(op.operands[1]) \
        and not _const(op.operands[0]) and bool(_zero_codes(op.operands[1]).all())


def _constant_layer(graph, op) -> bool:
    """An all-zero-weight layer (not a graph output) becomes the constant it computes."""
    from edgecc.ir.interp import run_op

    if op.result in graph.outputs or op.result.type.quant is not None and op.result.type.quant.per_axis:
        return False
    x = op.operands[0]
    zeros = np.zeros(x.type.shape, x.type.np_dtype)
    if x.type.quant is not None:
        zeros[...] = int(x.type.quant.zero_point[0])
    out = run_op(op, [zeros] + [v.data if v is not None else None for v in op.operands[1:]])[0]
    const = graph.add_constant(graph.unique_name(op.result.name), np.asarray(out), op.result.type)
    graph.replace_uses(op.result, const)
    graph.ops.remove(op)
    return True


@register("remove_zero_channels")
def run(graph, ctx):
    found = dict(removed={}, constant_layers=[], kept={})
    if ctx is not None and ctx.options.get("sparsity") == "off":
        graph.meta["zero_channels"] = found
        return graph
    progress = True
    while progress:
        progress = False
        users = graph.users()
        for op in list(graph.ops):
            if _weights_all_zero(op) and _constant_layer(graph, op):
                found["constant_layers"].append(_name(op))
                progress = True
                break
            if not _producer(op):
                continue
            zero = zero_output_channels(op)
            if not zero.any():
                continue
            chain = follow(op.result, zero, users, set(graph.outputs))
            if chain is None:
                found["kept"][_name(op)] = int(zero.sum())
                continue
            removed = remove(graph, op, zero, *chain)
            found["removed"][_name(op)] = dict(channels=int(zero.sum()), macs=int(removed))
            found["kept"].pop(_name(op), None)
            progress = True
            break
    graph.remove_dead()
    graph.meta["zero_channels"] = found
    return graph
