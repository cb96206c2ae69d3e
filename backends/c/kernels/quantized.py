"""Entry point of the integer (quantized) kernels: a registry by op kind, consulted by `select()` before
the float registry whenever an op's operands or result carry quantization.

Kinds such as conv, add or softmax have one float kernel in the main registry and one integer kernel
here; the q*.py modules register theirs with @quantized(kind). A registered function returns a Kernel,
raises Unsupported (quantized, but not something the integer kernels can do), or returns None (not an
integer op after all, e.g. a transpose whose operand and result share one quantization: the
data-movement kernels copy those bytes as they are).
"""
from __future__ import annotations

QUANTIZED: dict = {}


def quantized(*kinds):
    def add(fn):
        for k in kinds:
            QUANTIZED[k] = fn
        return fn
    return add


def quantized_kernel(op):
    """The integer kernel for `op`, or None when the integer kernels have nothing to say about it."""
    from . import load_all
    load_all()
    fn = QUANTIZED.get(op.kind)
    return fn(op) if fn is not None else None
