"""The tiled op: a chain of layers run strip by strip (ir/tiling.py says which rows each computes).

Each layer's share of a strip is an ordinary op on fewer rows (tiling.variant), with its own kernel
picked as for any op and rendered as a small function of its own; the tiled layer's function only
calls them, strip after strip, in loops where consecutive strips look alike. The first layer reads
its rows straight from the operand, the last writes its rows straight into the result, and the
rows in between live in the layer's scratch (patch buffers placed like the arena, by lifetime).

The result may share the operand's buffer: strip k's output must never reach input rows a later
strip (or, with one layer, the same call) still reads. Kernel.inplace gives the least offset of
the operand inside the result's buffer that guarantees it.
"""
from __future__ import annotations

from collections import OrderedDict

from edgecc.compiler.memory.placement import Block, Group, align, place
from edgecc.ir.tiling import chain, check_variant, strips, variant

from . import CTYPES, Kernel, current_target, kernel, select

_VARIANTS: OrderedDict = OrderedDict()  # (layer op, share, target) -> (variant op, Kernel); ops by identity
_CACHE_SIZE = 512


def _shape(share) -> tuple:
    """What a layer's function for a share depends on: not where its rows lie, only how many and the pads."""
    return share.in_rows, share.pad_top, share.pad_bottom, share.out_rows


def _variant_kernel(layer, share, target):
    """The variant op and its kernel, remembered: the memory passes ask about many strip sizes."""
    key = (layer, _shape(share), getattr(target, "name", None))
    if key in _VARIANTS:
        _VARIANTS.move_to_end(key)
        return _VARIANTS[key]
    v = variant(layer, share)
    check_variant(layer, v)
    _VARIANTS[key] = found = (v, select(v, target))
    if len(_VARIANTS) > _CACHE_SIZE:
        _VARIANTS.popitem(last=False)
    return found


def _row_bytes(t) -> int:
    """Bytes of one row of an NHWC tensor."""
    return t.shape[2] * t.shape[3] * t.np_dtype.itemsize


def _runs(per_strip: list, in_row: int, out_row: int) -> list:
    """Consecutive strips with the same shares per layer and evenly spaced rows, as loops:
    (first strip, count, step of the input / output element offsets)."""
    runs = []
    for k, shares in enumerate(per_strip):
        sig = tuple(_shape(s) for s in shares)
        at = (shares[0].in_start * in_row, shares[-1].out_start * out_row)
        if runs and runs[-1]["sig"] == sig:
            r = runs[-1]
            step = r["step"] if r["count"] > 1 else (at[0] - r["at"][0], at[1] - r["at"][1])
            if at == (r["at"][0] + r["count"] * step[0], r["at"][1] + r["count"] * step[1]):
                r["step"], r["count"] = step, r["count"] + 1
                continue
        runs.append(dict(first=k, sig=sig, at=at, count=1, step=(0, 0)))
    return runs


def inplace_offset(per_strip: list, in_row: int, out_row: int) -> int:
    """Least offset of the operand inside the result's buffer such that writing strip k never touches
    input rows still to be read: by later strips, or by strip k itself when one layer reads and writes."""
    one_layer = len(per_strip[0]) == 1
    need = 0
    for k, shares in enumerate(per_strip):
        written_end = (shares[-1].out_start + shares[-1].out_rows) * out_row
        if one_layer:
            first_unread = shares[0].in_start
        elif k + 1 < len(per_strip):
            first_unread = per_strip[k + 1][0].in_start
        else:
            continue
        need = max(need, written_end - first_unread * in_row)
    return align(need)


@kernel("tiled")
def tiled(op) -> Kernel:
    layers = chain(op.regions[0])
    rows = op.attrs["rows"]
    per_strip = strips(layers, rows)
    target = current_target()
    x, y = op.operands[0].type, op.result.type

    # one function per layer and shape of share (strips alike in shape share them, wherever their rows lie)
    subops, suffixes = [], {}

    def suffix_of(j, share):
        key = (j, _shape(share))
        if key not in suffixes:
            v, k = _variant_kernel(layers[j], share, target)
            suffixes[key] = suffix = f"{j}_{sum(1 for other in suffixes if other[0] == j)}"  # layer _ shape
            subops.append((suffix, v, k))
        return suffixes[key]

    for shares in per_strip:
        for j, share in enumerate(shares):
            suffix_of(j, share)
    kernels = {s: k for s, _, k in subops}

    # patch buffers: layer j's rows live from its call to the next; its scratch during its call
    groups = []
    for j, layer in enumerate(layers):
        need = max(kernels[suffix_of(j, shares[j])].scratch for shares in per_strip)
        if need:
            groups.append(Group([Block(("scratch", j), align(need), j, j)]))
        if j + 1 < len(layers):
            size = max(shares[j].out_rows for shares in per_strip) * _row_bytes(layer.result.type)
            groups.append(Group([Block(("rows", j), align(size), j, j + 1)]))
    scratch = place(groups)
    at = {g.blocks[0].key: g.offset for g in groups}

    in_row, out_row = _row_bytes(x) // x.np_dtype.itemsize, _row_bytes(y) // y.np_dtype.itemsize
    runs = []
    for r in _runs(per_strip, in_row, out_row):
        shares, loop = per_strip[r["first"]], r["count"] > 1
        calls = []
        for j, layer in enumerate(layers):
            suffix = suffix_of(j, shares[j])
            src = _pointer("x0", r["at"][0], r["step"][0], loop) if j == 0 else \
                f"({CTYPES[layers[j - 1].result.type.dtype]} *)(void *)(scratch + {at[('rows', j - 1)]})"
            dst = _pointer("y0", r["at"][1], r["step"][1], loop) if j + 1 == len(layers) else \
                f"({CTYPES[layer.result.type.dtype]} *)(void *)(scratch + {at[('rows', j)]})"
            args = [src, dst] + ([f"scratch + {at[('scratch', j)]}"] if kernels[suffix].scratch else [])
            calls.append(dict(suffix=suffix, args=", ".join(args)))
        runs.append(dict(count=r["count"], first=r["first"], calls=calls))
    kinds = ", ".join(layer.kind for layer in layers)  # model names reach the C only as identifiers (names.py)
    return Kernel("tiled.c.j2", dict(runs=runs, strips=len(per_strip), rows=rows, layers=kinds, count=len(layers)),
                  scratch=scratch, subops=tuple(subops),
                  inplace=((0, inplace_offset(per_strip, _row_bytes(x), _row_bytes(y))),))


def _pointer(base: str, first: int, step: int, loop: bool) -> str:
    terms = [base] + ([str(first)] if first else []) + ([f"k * {step}"] if loop and step else [])
    return " + ".join(terms)
