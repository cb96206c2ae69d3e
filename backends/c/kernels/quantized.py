"""Entry point of the integer (quantized) kernels: a registry by op kind, consulted by `select()` before
the float registry whenever an op's operands or result carry quantization.

Kinds such as conv, add or softmax have one float kernel in the main registry and one integer kernel
here (which may pick its loops by the kind of machine, `family()`); the q*.py modules register theirs
with @quantized(kind). A registered function returns a Kernel, raises Unsupported (quantized, but not
something the integer kernels can do), or returns None (not an integer op after all, e.g. a transpose
whose operand and result share one quantization: the data-movement kernels copy those bytes as they are).
"""
from __future__ import annotations

QUANTIZED: dict = {}
BIASED = ("conv", "fully_connected", "gemm")  # kinds whose operand 2 is a bias


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
    k = fn(op) if fn is not None else None
    if k is not None and op.kind in BIASED and len(op.operands) > 2 and \
            any(name in ("bias", "fbias") for name, _ in k.consts):
        # the kernel carries the bias in its own table (rescaled, zero points folded in): the C file
        # needs no copy of the operand's array
        k.replaced = tuple(sorted(set(k.replaced) | {2}))
    return k


def family() -> str:
    """The kind of machine the integer kernels are chosen for, from the target of the select() in progress:
      "mve"  an Arm core with Helium (M55: [isa] helium): VMLADAVA on int8 vectors (arm_mve.h, qmve.py),
             the DSP kernels for what those do not cover;
      "dsp"  an Arm core with the DSP extension (M4, M7, M33): SMLAD on int16 pairs (arm_acle.h);
      "host" a machine whose C compiler vectorizes (the host target, or no target): wide int16 dot products;
      "mcu"  any other microcontroller (M0+): compact plain C, int8 weights, little scratch.
    """
    from . import current_target
    t = current_target()
    if t is None or t.isa.get("simd"):
        return "host"
    if t.isa.get("helium"):
        return "mve"
    return "dsp" if t.isa.get("dsp") else "mcu"
