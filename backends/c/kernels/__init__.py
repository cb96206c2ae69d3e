"""Kernel selection for the C backend: for each op kind, a function that looks at the op (shapes,
dtypes, attributes) and decides what C to emit: which template renders the layer's body and
with which constants. Python decides here; the templates in codegen_templates/c/ops only say how
the C reads.

A kernel function takes the op and returns a Kernel, or raises Unsupported with the reason (the
backend's why_not() reports it). Layer functions receive their operands as x0, x1, ... (const
pointers; None operands as NULL), their results as y0, y1, ..., and `scratch` (uint8_t *) when
the kernel asked for scratch bytes.
"""
from __future__ import annotations

import contextvars
import importlib
import pkgutil
from dataclasses import dataclass, field

import numpy as np

# i4: 4-bit weights, packed two a byte (kernels/int4.py)
CTYPES = {"f32": "float", "i8": "int8_t", "i4": "uint8_t", "u8": "uint8_t", "i16": "int16_t", "i32": "int32_t",
          "i64": "int64_t", "i1": "uint8_t"}
# each integer type's least and greatest value, as C spells them
INT_LIMITS = {"i8": ("INT8_MIN", "INT8_MAX"), "u8": ("0", "UINT8_MAX"), "i16": ("INT16_MIN", "INT16_MAX"),
              "i32": ("INT32_MIN", "INT32_MAX"), "i64": ("INT64_MIN", "INT64_MAX"), "i1": ("0", "1")}


class Unsupported(Exception):
    """This op, with these dtypes or attributes, has no C kernel; the message says why."""


@dataclass
class Kernel:
    template: str  # path under codegen_templates/c/ops/
    vars: dict = field(default_factory=dict)
    scratch: int = 0  # bytes of arena scratch the layer needs while it runs
    consts: list = field(default_factory=list)  # extra tables: (suffix, np.ndarray); named <layer>_<suffix>
    # operand indices whose constant data the kernel carries itself in `consts` (e.g. weights reordered at
    # compile time): the backend drops such a constant from the C file when no other reader needs it
    replaced: tuple = ()
    # templates (under codegen_templates/c/) rendered once at file scope, before the layers, for helpers
    # the body calls (e.g. the DSP intrinsics of arm_acle.h with a portable C stand-in for other compilers)
    prelude: tuple = ()
    # (operand index, byte offset of that operand's buffer inside the result's) the kernel may run in place
    # with, when it knows this itself (other kernels: backends/c/inplace.py)
    inplace: tuple = ()
    # layer functions this one calls: (suffix, op, Kernel), each rendered as its own function <layer>_<suffix>
    # taking only its run-time operands, results and scratch (e.g. the strips of a tiled op, kernels/tiled.py)
    subops: tuple = ()


KERNELS: dict = {}


def kernel(*kinds):
    def add(fn):
        for k in kinds:
            KERNELS[k] = fn
        return fn
    return add


def load_all():
    if not getattr(load_all, "done", False):
        for m in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{m.name}")
        load_all.done = True


def has_quant(op) -> bool:
    """Any operand or result carries quantization, or it is an integer conv/matmul (accumulates to int32)."""
    vals = op.inputs() + op.results
    if any(v.type.quant is not None for v in vals):
        return True
    return op.kind in ("conv", "matmul", "fully_connected", "gemm") and op.operands[0].type.dtype in ("i8", "u8")


# The target a kernel is being selected for, while select() runs (None: the host). Kernels that
# tune to the machine, such as register tiles sized to the vector unit, read it with current_target().
_TARGET: contextvars.ContextVar = contextvars.ContextVar("edgecc_kernel_target", default=None)


def current_target():
    """The Target of the select() call in progress, or None (the host)."""
    return _TARGET.get()


def select(op, target=None, optimize: str = "balanced") -> Kernel:
    """The kernel for `op` on `target` (None: the host); optimize: "balanced", "speed" or "size", how
    small layers trade code size against speed (compact.py)."""
    load_all()
    from .compact import optimizing, reset
    token, mode = _TARGET.set(target), optimizing(optimize)
    try:
        if has_quant(op):
            # integer kernels first (quantized.py); None means "not mine": the float/data-movement registry decides
            from .quantized import quantized_kernel
            k = quantized_kernel(op)
            if k is not None:
                return k
        fn = KERNELS.get(op.kind)
        if fn is None:
            raise Unsupported(f"no C kernel for op kind '{op.kind}'")
        return fn(op)
    finally:
        _TARGET.reset(token)
        reset(mode)


# ---- helpers kernels share ----------------------------------------------------------------------
def ctype(v) -> str:
    return CTYPES[v.type.dtype]


def c_float(x) -> str:
    """A float32 literal that reads back as exactly the same float."""
    x = np.float32(x)
    if np.isnan(x):
        return "NAN"
    if np.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    r = np.format_float_positional(x, unique=True, trim="0") if 1e-4 <= abs(float(x)) < 1e7 or x == 0 \
        else np.format_float_scientific(x, unique=True, trim="0")
    if r.endswith("."):
        r += "0"
    if "." not in r and "e" not in r:
        r += ".0"
    return r + "f"


def c_int(x, dtype: str) -> str:
    x = int(x)
    if dtype == "i64":
        return "INT64_C(%d)" % x if abs(x) >= 2**31 - 1 else str(x)
    if dtype == "i32" and x == -2**31:
        return "(-2147483647 - 1)"
    return str(x)


def strides(shape) -> list:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def broadcast_strides(shape, out_shape) -> list:
    """Element strides of an operand of `shape` read at each index of `out_shape` (0 = broadcast)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    st = strides(shape)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(shape, out_shape, st)]


def collapse(out_shape, operand_strides: list):
    """Merge adjacent dims that every operand walks contiguously; returns (dims, strides per operand)."""
    dims = list(out_shape)
    sts = [list(s) for s in operand_strides]
    i = len(dims) - 1
    while i > 0:
        # dims i-1 and i merge when, for every operand, stride[i-1] == stride[i] * dims[i]
        if all(s[i - 1] == s[i] * dims[i] for s in sts):
            dims[i - 1] *= dims[i]
            del dims[i]
            for s in sts:
                s[i - 1] = s[i]
                del s[i]
        i -= 1
    if not dims:
        dims, sts = [1], [[0] for _ in sts]
    return dims, sts


def index_expr(strides_) -> str:
    """C index expression over loop counters i0, i1, ... for the given strides."""
    terms = []
    for k, s in enumerate(strides_):
        if s == 1:
            terms.append(f"i{k}")
        elif s:
            terms.append(f"i{k} * {s}")
    return " + ".join(terms) or "0"


# ---- helpers for kernels that move stored values (movement, pad, resize, reduce) ----------------
def require_same_quant(op, values) -> None:
    """Kernels that only move stored integers need every operand to share the result's quantization."""
    want = op.results[0].type.quant
    for v in values:
        if v is not None and v.type.quant != want:
            raise Unsupported(f"{op.kind}: operand %{v.name} and the result are quantized differently")


def stored_literal(value: float, ttype) -> str:
    """C literal of the real number `value` as a tensor of type `ttype` stores it: quantized with the
    type's (per-tensor) quant, else rounded and saturated to the integer range (floats as is)."""
    if ttype.dtype == "f32":
        return c_float(value)
    if ttype.dtype == "i1":
        return "1" if value else "0"
    if ttype.quant is not None:
        if ttype.quant.per_axis:
            raise Unsupported("a constant fill value for a per-axis quantized tensor")
        value = np.rint(value / ttype.quant.scale[0]) + ttype.quant.zero_point[0]
    info = np.iinfo(ttype.np_dtype)
    return c_int(int(np.clip(np.rint(value), info.min, info.max)), ttype.dtype)


def int_table(values) -> np.ndarray:
    """An index/offset table in the narrowest signed type that holds it (int16 or int32): flash is scarce."""
    a = np.asarray(values, dtype=np.int64)
    if a.size == 0 or (a.min() >= -2**15 and a.max() < 2**15):
        return a.astype(np.int16)
    return a.astype(np.int32)
