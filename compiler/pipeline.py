"""Per-target pass pipelines: the backend names the passes, this runs them in order."""
from __future__ import annotations

from edgecc.ir.verifier import verify

from .passes import PassContext, get_pass


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
