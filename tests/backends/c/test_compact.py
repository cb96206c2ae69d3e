"""Which layers get the compact kernels (backends/c/kernels/compact.py): the choice by target and by
optimization mode, on real models. (Their numbers: test_quantized.py's compact tests.)"""
from __future__ import annotations

import pytest

from conftest import edgecc, mlperf_path
from edgecc.backends.c.kernels import select
from edgecc.backends.registry import backend_for, get_target
from edgecc.compiler.driver import load
from edgecc.compiler.pipeline import lower
from edgecc.ir.analysis import macs, weight_bytes


def compact_layers(stem, target, optimize):
    """{layer name: (MACs, weight bytes)} of the layers the compact kernels run."""
    g = lower(load(mlperf_path(stem)), target, backend=backend_for(target, optimize))
    t = get_target(target)
    return {op.name: (macs(op), weight_bytes(op)) for op in g.ops
            if op.kind in ("conv", "fully_connected", "gemm", "matmul", "max_pool")
            and select(op, t, optimize).template.startswith("q_compact")}


def test_balanced_keeps_the_big_layers_specialized():
    # kws: the 64 x 12 classifier is compact (768 MACs); every conv has 320,000 MACs or more and keeps its
    # own SMLAD kernel (issue 4's instruction counts)
    took = compact_layers("kws_int8", "cortex-m7", "balanced")
    assert list(took.values()) == [(64 * 12, 64 * 12 + 4 * 12)]
    # ad, the 640-128-...-640 autoencoder: only the two layers at its 8-unit bottleneck; its 128 x 128 layers
    # have few MACs (16,384) but 16 KiB of weights, next to which a specialized kernel's code is small
    took = compact_layers("ad_int8", "cortex-m7", "balanced")
    assert sorted(m for m, _ in took.values()) == [1024, 1024]


@pytest.mark.parametrize("target", ["host", "cortex-m0plus"])
def test_targets_without_the_costs_keep_every_kernel(target):
    assert compact_layers("kws_int8", target, "balanced") == {}


def test_speed_and_size_override_the_costs():
    assert compact_layers("kws_int8", "cortex-m7", "speed") == {}
    # size: every int8 conv of one group and every fully connected layer (the depthwise convs keep theirs)
    took = compact_layers("kws_int8", "cortex-m7", "size")
    g = lower(load(mlperf_path("kws_int8")), "cortex-m7")
    covered = {op.name for op in g.ops if (op.kind == "conv" and op.attrs["group"] == 1)
               or op.kind in ("fully_connected", "gemm")}
    assert set(took) == covered and len(covered) == 6


def test_unknown_mode_is_a_clear_error():
    from edgecc.ir.errors import EdgeccError

    with pytest.raises(EdgeccError, match="unknown optimization 'tiny'"):
        backend_for("cortex-m7", "tiny")


def test_command_line(tmp_path):
    model = mlperf_path("kws_int8")
    for mode, compact in (("size", True), ("speed", False)):
        p = edgecc(model, "--target", "cortex-m7", "--optimize", mode, "-o", tmp_path / mode)
        assert p.returncode == 0, p.stderr
        assert ("q_conv_compact(" in (tmp_path / mode / "model.c").read_text()) == compact
    # verify builds the size build on the host and compares it with onnxruntime: the same integers
    p = edgecc("verify", model, "--optimize", "size", "--data", mlperf_path("kws_int8", "npz"))
    assert p.returncode == 0 and "0 LSB" in p.stdout, p.stdout + p.stderr
    p = edgecc(model, "--optimize", "tiny", "-o", tmp_path / "x")
    assert p.returncode == 2 and "invalid choice: 'tiny'" in p.stderr and not (tmp_path / "x").exists()
