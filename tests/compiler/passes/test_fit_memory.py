"""fit_memory: a plan over the SRAM budget gets the layers at its peak computed in strips (a `tiled` op),
chosen by a cost model, or the compile is refused with the least budget that works. Also the tiled op
itself as IR: printed and parsed back, verified, interpreted."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, assert_same_numbers, check_pass, context, kinds  # noqa: E402
from plan_checks import check_plan  # noqa: E402

from edgecc.backends.registry import backend_for  # noqa: E402
from edgecc.compiler.passes import get_pass  # noqa: E402
from edgecc.ir import parse, print_graph, verify  # noqa: E402
from edgecc.ir.errors import EdgeccError  # noqa: E402
from edgecc.ir.tiling import strips  # noqa: E402
from edgecc.ir.verifier import VerifyError  # noqa: E402

NHWC = dict(layout="nhwc")


def conv(b, x, name, cin, cout, k=3, stride=1, pads=(1, 1, 1, 1), group=1, act="none"):
    w = b.const(f"{name}_w", b.rng.standard_normal((cout, k, k, cin // group)) * 0.5, layout="ohwi")
    bias = b.weights(f"{name}_b", (cout,))
    return b.op("conv", [x, w, bias], name=name, strides=[stride, stride], pads=list(pads), dilations=[1, 1],
                group=group, channels_last=1, activation=act, **NHWC)


def stem_graph():
    """A small image stem, channels last: 3x3 conv, stride-2 depthwise, pointwise. The first conv's output
    (4 KiB) next to its input is the peak."""
    b = Builder("stem")
    x = b.input("x", (1, 16, 8, 2), **NHWC)
    y = conv(b, x, "conv0", 2, 8, act="relu")
    y = conv(b, y, "dw", 8, 8, stride=2, pads=(0, 0, 1, 1), group=8)
    y = conv(b, y, "pw", 8, 4, k=1, pads=(0, 0, 0, 0))
    return b.graph(y)


def host():
    return backend_for("host")


def test_fits_by_computing_the_stem_in_strips():
    g = check_pass("fit_memory", stem_graph(), "fit_memory_stem", ctx=context(host(), sram=512 + 3072))
    assert kinds(g) == ["tiled", "conv"]
    tiled = next(op for op in g.ops if op.kind == "tiled")
    assert tiled.attrs["rows"] >= 1 and [op.name for op in tiled.regions[0].ops][0] == "conv0"
    g = get_pass("memory_plan")(g, context(host(), sram=512 + 3072))
    plan = g.meta["memory_plan"]
    check_plan(g, plan, host())
    assert plan.arena_bytes + 512 <= 512 + 3072


def test_nothing_changes_when_the_plan_fits():
    g = check_pass("fit_memory", stem_graph(), ctx=context(host(), sram=64 * 1024))
    assert kinds(g) == ["conv", "conv", "conv"]


def test_refusal_names_the_floor_and_the_layer():
    with pytest.raises(EdgeccError) as e:
        get_pass("fit_memory")(stem_graph(), context(host(), sram=1024, file="stem.onnx"))
    msg = str(e.value)
    assert msg.startswith("stem.onnx: needs at least ") and " KiB of SRAM (layer '" in msg
    assert msg.endswith("'); --sram 1K given")
    floor = float(msg.split("needs at least ")[1].split(" KiB")[0]) * 1024
    # the floor works: a budget of it (rounded up to the KiB shown) compiles
    g = get_pass("fit_memory")(stem_graph(), context(host(), sram=int(floor) + 103))
    g = get_pass("memory_plan")(g, context(host(), sram=int(floor) + 103))
    assert g.meta["memory_plan"].arena_bytes + 512 <= floor + 103


def tiled_by_hand(rows=3):
    from edgecc.compiler.passes.fit_memory import Candidate, apply

    g = stem_graph()
    apply(g, list(g.ops), Candidate(0, 2, rows, 0, 0))
    verify(g)
    return g


def test_tiled_op_prints_parses_and_interprets():
    g = tiled_by_hand()
    text = print_graph(g)
    assert "= tiled(%x) {rows = 3}" in text and "graph @strips(" in text
    again = parse(text)
    assert print_graph(again) == text
    assert_same_numbers(stem_graph(), again)


def test_verifier_rejects_a_body_that_is_not_a_row_chain():
    from edgecc.compiler.passes.fit_memory import Candidate, apply

    b = Builder()
    x = b.input("x", (1, 4, 4, 2), **NHWC)
    y = b.op("softmax", [b.op("relu", [x], name="relu", **NHWC)], name="soft", axis=3, **NHWC)
    g = b.graph(y)
    apply(g, list(g.ops), Candidate(0, 1, 2, 0, 0))
    with pytest.raises(VerifyError, match="layer 'soft' .softmax. cannot be tiled: softmax is not computed row by row"):
        verify(g)


def test_strips_cover_every_row_once_with_halos_in_between():
    g = tiled_by_hand()
    layers = g.ops[0].regions[0].ops
    shares = strips(layers, 3)
    assert [s[-1].out_rows for s in shares] == [3, 3, 2]  # the last layer's 8 rows, 3 at a time
    for s in shares:
        for a, b in zip(s, s[1:]):  # each layer makes exactly the rows the next one reads
            assert (a.out_start, a.out_rows) == (b.in_start, b.in_rows)
    # the first conv: rows 0..6 for strip 0 (pad above), the last strip reads to the bottom (pad below)
    assert (shares[0][0].in_start, shares[0][0].pad_top) == (0, 1) and shares[-1][0].pad_bottom == 1
    assert np.all(np.diff([s[0].in_start for s in shares]) > 0)
