"""Per-target pass pipelines: the backend names the passes, this runs them in order.

Quantization (`edgecc --quantize int8`) splices its passes into the target's list with
`quantizing`: after the float clean-up passes (what is calibrated is what will run), before
layout, fallback and memory planning.
"""
from __future__ import annotations

from edgecc.ir.verifier import verify

from .passes import PassContext, get_pass

QUANTIZATION = ["calibrate", "quantize_int8", "quantization_report"]
FLOAT_CLEANUP = ("fold_constants", "fold_batchnorm", "fuse")


def quantizing(passes: list) -> tuple[list, list]:
    """The target's `passes` with the quantization passes spliced in after its leading float clean-up
    passes, as (everything up to the quantization report, the rest)."""
    passes = list(passes)
    at = 0
    while at < len(passes) and passes[at] in FLOAT_CLEANUP:
        at += 1
    return passes[:at] + QUANTIZATION, passes[at:]


def lower(graph, target, options=None, backend=None, passes=None):
    """Run the target's pipeline (or the pass names in `passes`) on `graph`, changed in place and
    returned, verifying after each pass."""
    from edgecc.backends.registry import backend_for, get_target

    t = get_target(target) if isinstance(target, str) else target
    backend = backend or backend_for(t)
    ctx = PassContext(target=t, backend=backend, options=dict(options or {}))
    for name in (backend.pipeline() if passes is None else passes):
        graph = get_pass(name)(graph, ctx)
        verify(graph)
    return graph
