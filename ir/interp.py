"""The reference interpreter: runs an IR graph with numpy, exactly as ONNX defines each op.

It is the oracle every pass and backend is tested against, and constant folding calls `run_op`.
Speed does not matter here; being right and readable does.

How a value is computed (the QDQ reading of quantization, see ir/ops.py):
  * A quantized operand (its type has `quant`) is dequantized to real numbers in float64.
  * A float32 operand is widened to float64; integer and bool operands stay in their own dtype,
    so integer ops keep ONNX integer semantics (wrap-around, division truncating toward zero).
  * The op's kernel computes.
  * Each result is stored in its type: quantized types round half to even, add the zero point
    and saturate; float32 types round once to float32; plain integer types cast.
`quantize`, `dequantize`, `partition` and `tiled` see the stored arrays directly (RAW_KINDS).

Checks that catch frontend and pass bugs: every result must come out with its type's shape, and
a plain (unquantized) result must be of the kind the op computes (float, integer or bool).
Spatial kernels work channels-first; a tensor whose type layout is channels-last ('nhwc') is
moved around them (`channels_first`).

Kernels live in KERNELS, one small function per kind (a shared one per family), called as
`kernel(op, *operands)` with None for a missing optional operand; a kernel returns one array or
a list of arrays (one per result of the op).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .ops import resize_geometry
from .types import TensorType, int_range, is_channels_last

KERNELS: dict[str, Callable] = {}
RAW_KINDS = {"quantize", "dequantize", "partition", "tiled"}


def kernel(*kinds):
    """Register the decorated function as the kernel of each of `kinds`."""
    def register(fn):
        for k in kinds:
            KERNELS[k] = fn
        return fn
    return register


# ---- entry points ----------------------------------------------------------------------------
def run(graph, inputs) -> list:
    """Run `graph` on `inputs` (a dict keyed by input name, or a list in graph.inputs order).

    Returns the stored arrays of graph.outputs, in order.
    """
    if isinstance(inputs, dict):
        missing = [v.name for v in graph.inputs if v.name not in inputs]
        if missing:
            raise ValueError(f"graph {graph.name!r}: no value given for inputs {missing}")
        given = [inputs[v.name] for v in graph.inputs]
    else:
        given = list(inputs)
        if len(given) != len(graph.inputs):
            raise ValueError(f"graph {graph.name!r} takes {len(graph.inputs)} inputs, got {len(given)}")
    env = {}
    for v, a in zip(graph.inputs, given):
        env[v] = _check_input(v, a)
    for c in graph.constants:
        env[c] = c.data
    for op in graph.ops:
        outs = run_op(op, [None if v is None else env[v] for v in op.operands])
        env.update(zip(op.results, outs))
    return [np.array(env[v]) for v in graph.outputs]  # copies: callers must not alias constants


def run_op(op, arrays) -> list:
    """Run one op on the stored arrays of its operands (aligned with op.operands, None where absent;
    a list of only the present operands is accepted too). Returns the stored result arrays."""
    arrays = list(arrays)
    if len(arrays) != len(op.operands):
        assert len(arrays) == len(op.inputs()), \
            f"{op.kind} '{op.name}': {len(arrays)} arrays for {len(op.operands)} operands"
        present = iter(arrays)
        arrays = [None if v is None else next(present) for v in op.operands]
    fn = KERNELS.get(op.kind)
    if fn is None:
        raise KeyError(f"interp: no kernel for op kind {op.kind!r}")
    for v, a in zip(op.operands, arrays):
        if v is not None:
            assert tuple(np.shape(a)) == tuple(v.type.shape), \
                f"{op.kind} '{op.name}': operand %{v.name} is {np.shape(a)}, its type says {v.type.shape}"
    with np.errstate(all="ignore"):  # inf/nan and integer wrap-around are ONNX semantics here
        if op.kind in RAW_KINDS:
            outs = _as_list(op, fn(op, *arrays))
            stored = [_as_dtype(r.type, o) for r, o in zip(op.results, outs)]
        else:
            real = [None if v is None else to_real(v.type, a) for v, a in zip(op.operands, arrays)]
            outs = _as_list(op, fn(op, *real))
            for r, o in zip(op.results, outs):
                _check_kind(op, r, o)
            stored = [to_stored(r.type, o) for r, o in zip(op.results, outs)]
    for r, s in zip(op.results, stored):
        assert s.shape == tuple(r.type.shape), \
            f"{op.kind} '{op.name}': result %{r.name} computed as {s.shape}, its type says {r.type.shape}"
    return stored


def _as_list(op, outs) -> list:
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    assert len(outs) >= len(op.results), f"{op.kind} '{op.name}': kernel gave {len(outs)} results"
    return outs


def _kind(dtype) -> str:
    return {"f": "float", "i": "integer", "u": "integer", "b": "bool"}.get(np.dtype(dtype).kind, "other")


def _check_kind(op, r, computed):
    """A plain (unquantized) result must be of the kind the op computes: a float op typed as an
    integer result would otherwise be truncated silently (a frontend or pass bug)."""
    if r.type.quant is not None or op.kind == "cast":
        return
    want, got = _kind(r.type.np_dtype), _kind(np.asarray(computed).dtype)
    assert want == got, (f"{op.kind} '{op.name}': result %{r.name} is typed {r.type.dtype} "
                         f"but the op computes {got} values")


def _check_input(v, a):
    a = np.asarray(a)
    t = v.type
    if a.dtype != t.np_dtype:
        if not np.can_cast(a.dtype, t.np_dtype, "same_kind"):
            raise ValueError(f"input %{v.name}: {a.dtype} given, {t.dtype} expected")
        a = a.astype(t.np_dtype)
    if a.shape != tuple(t.shape):
        raise ValueError(f"input %{v.name}: shape {list(a.shape)} given, {list(t.shape)} expected")
    return a


# ---- stored <-> real -------------------------------------------------------------------------
def to_real(t: TensorType, a: np.ndarray) -> np.ndarray:
    """The array the kernels compute on: real numbers (float64) for quantized and float tensors,
    the stored integers or bools otherwise."""
    a = np.asarray(a)
    if t.quant is not None:
        scale, zero = t.quant.broadcast(t.rank)
        return (a.astype(np.int64) - zero) * scale
    if t.dtype == "f32":
        return a.astype(np.float64)
    return a


def to_stored(t: TensorType, x) -> np.ndarray:
    """Store a computed array in type `t` (quantizing when `t` is quantized)."""
    x = np.asarray(x)
    if t.quant is not None:
        scale, zero = t.quant.broadcast(t.rank)
        lo, hi = int_range(t.dtype)  # the type's range, not its storage's (i4 is held in int8)
        return np.clip(np.rint(x.astype(np.float64) / scale) + zero, lo, hi).astype(t.np_dtype)
    return x.astype(t.np_dtype)


def _as_dtype(t: TensorType, x) -> np.ndarray:
    """For kernels that already give stored arrays (RAW_KINDS)."""
    return np.asarray(x).astype(t.np_dtype)


def _saturate(q: np.ndarray, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def _is_int(a) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.integer)


def _like(x, y):
    """y in x's integer dtype when x is an integer tensor (truncating toward zero, as a C cast
    does and onnxruntime's integer kernels do); y unchanged otherwise."""
    if not _is_int(x) or _is_int(y):
        return y
    return np.trunc(np.nan_to_num(y)).astype(np.int64).astype(x.dtype)


# ---- quantization and partitions (stored arrays in and out) ----------------------------------
@kernel("quantize")
def _quantize(op, x):
    src, dst = op.operands[0].type, op.result.type
    assert dst.quant is not None, f"quantize '{op.name}': result type has no quant"
    if src.quant is None and src.dtype == "f32" and dst.np_dtype.itemsize <= 2:
        # ONNX QuantizeLinear divides in float32; doing the same keeps ties where ONNX has them
        # (not for 32-bit results, whose integers float32 cannot hold).
        return _quantize_linear_f32(dst, x)
    scale, zero = dst.quant.broadcast(dst.rank)
    return _saturate(np.rint(to_real(src, x) / scale) + zero, dst.np_dtype)


def _quantize_linear_f32(t: TensorType, x) -> np.ndarray:
    """ONNX QuantizeLinear of float32 values into type t, stored: x / scale in float32, rounded half to even,
    plus the zero point, saturated."""
    scale, zero = t.quant.broadcast(t.rank)
    q = np.rint(np.asarray(x, np.float32) / scale.astype(np.float32)).astype(np.float64)
    return _saturate(q + zero, t.np_dtype)


@kernel("dequantize")
def _dequantize(op, x):
    src = op.operands[0].type
    assert src.quant is not None, f"dequantize '{op.name}': operand type has no quant"
    return to_real(src, x)


@kernel("partition", "tiled")  # a tiled op computes what its body computes, strip by strip
def _partition(op, *xs):
    return run(op.regions[0], list(xs))


# ---- elementwise -----------------------------------------------------------------------------
def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _erf(x):
    return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)


def _hard_sigmoid(x, alpha, beta):
    return np.clip(alpha * x + beta, 0.0, 1.0)


def _int_or(fn):
    """A rounding function that leaves integer tensors as they are."""
    return lambda x: x if _is_int(x) else fn(x)


UNARY_FNS = {
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "reciprocal": lambda x: 1.0 / x,
    "abs": np.abs,
    "neg": np.negative,
    "floor": _int_or(np.floor),
    "ceil": _int_or(np.ceil),
    "round": _int_or(np.rint),  # ONNX Round: half to even
    "erf": _erf,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "mish": lambda x: x * np.tanh(np.logaddexp(0.0, x)),
    "hard_swish": lambda x: x * _hard_sigmoid(x, 1.0 / 6.0, 0.5),
    "identity": lambda x: x,
    "not": np.logical_not,
}
for _k, _f in UNARY_FNS.items():
    KERNELS[_k] = (lambda f: lambda op, x: f(x))(_f)


@kernel("leaky_relu")
def _leaky_relu(op, x):
    return np.where(x >= 0, x, op.attrs["alpha"] * x)


@kernel("elu")
def _elu(op, x):
    return np.where(x >= 0, x, op.attrs["alpha"] * np.expm1(x))


@kernel("selu")
def _selu(op, x):
    a, g = op.attrs["alpha"], op.attrs["gamma"]
    return np.where(x > 0, g * x, g * a * np.expm1(x))


@kernel("hard_sigmoid")
def _hard_sigmoid_op(op, x):
    return _hard_sigmoid(x, op.attrs["alpha"], op.attrs["beta"])


@kernel("gelu")
def _gelu(op, x):
    if op.attrs["approximate"] == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


@kernel("clip")
def _clip(op, x):
    lo, hi = op.attrs["min"], op.attrs["max"]
    if not _is_int(x):
        return np.clip(x, lo, hi)
    info = np.iinfo(x.dtype)
    lo = info.min if lo == -math.inf else max(info.min, min(info.max, int(np.rint(lo))))
    hi = info.max if hi == math.inf else max(info.min, min(info.max, int(np.rint(hi))))
    return np.minimum(np.maximum(x, np.asarray(lo, x.dtype)), np.asarray(hi, x.dtype))


@kernel("cast")
def _cast(op, x):
    t = op.result.type
    if t.quant is not None or t.dtype == "f32":
        return x  # to_stored quantizes or rounds to float32
    if t.dtype == "i1":
        return x != 0
    if not _is_int(x) and x.dtype != np.bool_:
        # float -> int truncates toward zero (C conversion); NaN becomes 0
        x = np.nan_to_num(np.trunc(x), nan=0.0, posinf=2.0 ** 62, neginf=-2.0 ** 62).astype(np.int64)
    return x.astype(t.np_dtype)  # integer narrowing wraps, as C does


@kernel("prelu")
def _prelu(op, x, slope):
    return np.where(x < 0, slope * x, x)


def _int_div(a, b):
    """Integer division truncating toward zero (C semantics, as ONNX Div on integers)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)  # widen first: abs(int8 -128) wraps
    q = np.abs(a) // np.abs(np.where(b == 0, 1, b))
    q = np.where((a < 0) != (b < 0), -q, q)
    return np.where(b == 0, 0, q)


def _pow_whole(base, exponent, lowest):
    """base ** exponent, exact modulo 2^64, for whole exponents (by squaring, as the C helper does);
    a negative exponent truncates 1 / base ** -exponent toward zero, 0 to a negative power is `lowest`."""
    base, exponent = np.broadcast_arrays(np.asarray(base, np.int64), np.asarray(exponent, np.int64))
    power, square = np.ones(base.shape, np.uint64), base.astype(np.uint64)
    e = np.where(exponent < 0, 0, exponent).astype(np.uint64)
    with np.errstate(over="ignore"):
        while e.any():
            power = np.where(e & np.uint64(1), power * square, power)
            square, e = square * square, e >> np.uint64(1)
    power = power.astype(np.int64)
    negative = np.where(base == 0, lowest, np.where(np.abs(base) == 1, np.where(exponent % 2, base, 1), 0))
    return np.where(exponent < 0, negative, power)


def _pow(a, b):
    """ONNX Pow keeps the base's type. An integer base to a whole exponent is the exact power, wrapped
    to the type; to a fractional one it is computed in double and truncated, NaN and out-of-range
    results giving the type's minimum (C: backends/c helpers/int_pow_whole.c.j2, int_pow_real.c.j2)."""
    if not _is_int(a):
        return np.power(a, b)
    info = np.iinfo(a.dtype)
    if _is_int(b):
        return _pow_whole(a, b, info.min).astype(a.dtype)
    b64 = np.asarray(b, np.float64)
    whole = (b64 == np.trunc(b64)) & (np.abs(b64) < 2.0 ** 63)
    exact = _pow_whole(a, np.where(whole, b64, 0).astype(np.int64), info.min)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        real = np.power(a.astype(np.float64), b64)
        in_range = (real >= float(info.min)) & (real < float(info.max) + 1.0)
        real = np.where(in_range, np.trunc(np.where(in_range, real, 0)), info.min).astype(np.int64)
    return np.where(whole, exact, real).astype(a.dtype)


def _mod(op, a, b):
    if op.attrs["fmod"]:
        return np.fmod(a, b)  # sign of the dividend (C fmod)
    return np.mod(a, b)  # sign of the divisor (Python %)


BINARY_FNS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": lambda a, b: _int_div(a, b) if _is_int(a) and _is_int(b) else np.divide(a, b),
    "pow": _pow,
    "and": np.logical_and,
    "or": np.logical_or,
    "equal": np.equal,
    "less": np.less,
    "greater": np.greater,
    "less_or_equal": np.less_equal,
    "greater_or_equal": np.greater_equal,
}
for _k, _f in BINARY_FNS.items():
    KERNELS[_k] = (lambda f: lambda op, a, b: f(a, b))(_f)
KERNELS["mod"] = _mod


def _fold(fn):
    def variadic(op, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return np.broadcast_to(out, op.result.type.shape)
    return variadic


KERNELS["max"] = _fold(np.maximum)
KERNELS["min"] = _fold(np.minimum)
KERNELS["sum"] = _fold(np.add)


@kernel("mean")
def _mean(op, *xs):
    return _like(xs[0], _fold(np.add)(op, *xs) / len(xs))


@kernel("where")
def _where(op, cond, x, y):
    return np.where(cond, x, y)


# ---- fused activations of conv / fully_connected ----------------------------------------------
FUSED_ACTIVATIONS = {
    "none": lambda x, p: x,
    "relu": lambda x, p: np.maximum(x, 0.0),
    "relu6": lambda x, p: np.clip(x, 0.0, 6.0),
    "clip": lambda x, p: np.clip(x, p[0], p[1]),
    "leaky_relu": lambda x, p: np.where(x >= 0, x, (p[0] if p else 0.01) * x),
    "sigmoid": lambda x, p: _sigmoid(x),
    "tanh": lambda x, p: np.tanh(x),
    "hard_swish": lambda x, p: UNARY_FNS["hard_swish"](x),
}


def _activate(op, y):
    return _like(y, FUSED_ACTIVATIONS[op.attrs["activation"]](y, op.attrs["act_params"]))


# ---- layouts ---------------------------------------------------------------------------------
def _channels_last(t: TensorType) -> bool:
    """True for an activation layout like 'nhwc' (channels stored last); for ops with a channels_last
    attribute the verifier keeps the two in agreement."""
    return is_channels_last(t.layout)


def channels_first(fn):
    """Let an NC* kernel also take channels-last tensors: operand 0 is moved to channels-first
    when its type's layout says channels-last, and each result moved back when its layout does;
    a weight whose layout is 'o...i' (e.g. 'ohwi') is moved to 'oi...'."""
    def wrapped(op, x, *rest):
        if _channels_last(op.operands[0].type):
            x = np.moveaxis(x, -1, 1)
        rest = list(rest)
        if len(rest) and rest[0] is not None and op.operands[1].type.layout:
            lay = op.operands[1].type.layout
            if lay[0] == "o" and lay[-1] == "i" and len(lay) > 2:
                rest[0] = np.moveaxis(rest[0], -1, 1)
        outs = fn(op, x, *rest)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        return [np.moveaxis(o, 1, -1) if _channels_last(r.type) else o for r, o in zip(op.results, outs)]
    wrapped.__name__ = fn.__name__
    return wrapped


# ---- convolution and pooling -----------------------------------------------------------------
def _tap(a, offsets, dilations, strides, out_sizes):
    """The strided view of `a`'s trailing spatial axes that kernel position `offsets` sees for
    every output position (a must already be padded)."""
    sl = tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
               for k, d, s, o in zip(offsets, dilations, strides, out_sizes))
    return a[(Ellipsis,) + sl]


def _spatial_pad(a, pads, extra=None, value=0):
    nd = len(pads) // 2
    extra = extra or [0] * nd
    width = [(0, 0)] * (a.ndim - nd) + [(pads[i], pads[nd + i] + extra[i]) for i in range(nd)]
    return np.pad(a, width, constant_values=value)


def _accum_dtype(*xs):
    return np.float64 if any(x is not None and not _is_int(x) for x in xs) else np.int64


@kernel("conv")
@channels_first
def _conv(op, x, w, bias=None):
    a = op.attrs
    nd, g = x.ndim - 2, a["group"]
    dt = _accum_dtype(x, w)
    xp = _spatial_pad(x.astype(dt), a["pads"])
    n, c = x.shape[:2]
    m, ks = w.shape[0], w.shape[2:]
    out_sp = [(xp.shape[2 + i] - ((ks[i] - 1) * a["dilations"][i] + 1)) // a["strides"][i] + 1 for i in range(nd)]
    xg = xp.reshape(n, g, c // g, *xp.shape[2:])
    wg = w.astype(dt).reshape(g, m // g, c // g, *ks)
    out = np.zeros((n, g, m // g, int(np.prod(out_sp))), dt)
    for k in np.ndindex(*ks):
        patch = _tap(xg, k, a["dilations"], a["strides"], out_sp).reshape(n, g, c // g, -1)
        out += np.matmul(wg[(Ellipsis,) + k][None], patch)  # [g, M/g, C/g] @ [n, g, C/g, P]
    out = out.reshape(n, m, *out_sp)
    if bias is not None:
        out = out + bias.reshape((m,) + (1,) * nd)
    return _activate(op, out)


@kernel("conv_transpose")
@channels_first
def _conv_transpose(op, x, w, bias=None):
    a = op.attrs
    nd, g = x.ndim - 2, a["group"]
    dt = _accum_dtype(x, w)
    n, c, in_sp = x.shape[0], x.shape[1], x.shape[2:]
    mg, ks = w.shape[1], w.shape[2:]
    s, d, pads = a["strides"], a["dilations"], a["pads"]
    full = [s[i] * (in_sp[i] - 1) + (ks[i] - 1) * d[i] + 1 + a["output_padding"][i] for i in range(nd)]
    out = np.zeros((n, g, mg, *full), dt)
    xg = x.astype(dt).reshape(n, g, c // g, -1)
    wg = w.astype(dt).reshape(g, c // g, mg, *ks)
    for k in np.ndindex(*ks):
        contrib = np.matmul(np.swapaxes(wg[(Ellipsis,) + k], 1, 2)[None], xg)  # [n, g, M/g, P]
        _tap(out, k, d, s, in_sp)[...] += contrib.reshape(n, g, mg, *in_sp)
    crop = tuple(slice(pads[i], full[i] - pads[nd + i]) for i in range(nd))
    out = out.reshape(n, g * mg, *full)[(Ellipsis,) + crop]
    if bias is not None:
        out = out + bias.reshape((g * mg,) + (1,) * nd)
    return out


def _pool_geometry(op, x):
    """Output sizes and the extra end padding ceil_mode needs so every window fits."""
    a = op.attrs
    nd = x.ndim - 2
    dil = a.get("dilations", [1] * nd)
    rt = op.results[0].type
    out_sp = list(rt.shape[1:-1] if _channels_last(rt) else rt.shape[2:])
    extra = []
    for i in range(nd):
        need = (out_sp[i] - 1) * a["strides"][i] + (a["kernel_shape"][i] - 1) * dil[i] + 1
        have = x.shape[2 + i] + a["pads"][i] + a["pads"][nd + i]
        extra.append(max(0, need - have))
    return out_sp, dil, extra


@kernel("average_pool")
@channels_first
def _average_pool(op, x):
    """A float average in float64; with a quantized result, as onnxruntime runs DequantizeLinear, AveragePool and
    QuantizeLinear: the dequantized values (exact in x) in float32, summed in float32 tap by tap (window order),
    divided by the count in float32, then QuantizeLinear's float32 division by the scale. So ties fall where
    float32 puts them, not where the real numbers do (a sum of 5.5 steps exactly can be 5.4999995 in float32);
    returned as the real value of that code (to_stored gives the code back)."""
    a = op.attrs
    out_sp, dil, extra = _pool_geometry(op, x)
    quantized = op.result.type.quant is not None
    dtype = np.float32 if quantized else np.float64
    xp = _spatial_pad(x.astype(dtype), a["pads"], extra)
    ones = np.ones(x.shape[2:], dtype)
    inside = _spatial_pad(ones, a["pads"], extra)  # 1 on real input elements
    # count_include_pad counts explicit padding, but never the slack ceil_mode adds past it
    padded = _spatial_pad(_spatial_pad(ones, a["pads"], value=1), [0] * len(extra) + extra) \
        if a["count_include_pad"] else inside
    total = count = dtype(0)
    for k in np.ndindex(*a["kernel_shape"]):
        total = total + _tap(xp, k, dil, a["strides"], out_sp)
        count = count + _tap(padded, k, dil, a["strides"], out_sp)
    if quantized:
        return to_real(op.result.type, _quantize_linear_f32(op.result.type, total / count))
    return _like(x, total / count)


@kernel("max_pool")
@channels_first
def _max_pool(op, x):
    a = op.attrs
    out_sp, dil, extra = _pool_geometry(op, x)
    nd, sp = x.ndim - 2, x.shape[2:]
    low = -np.inf if not _is_int(x) else np.iinfo(x.dtype).min
    xp = _spatial_pad(x, a["pads"], extra, value=low)
    # flat spatial index of every input element (column-major when storage_order is 1); -1 on padding
    order = "F" if a["storage_order"] else "C"
    where = _spatial_pad(np.arange(int(np.prod(sp))).reshape(sp, order=order), a["pads"], extra, value=-1)
    best, best_at = None, None
    for k in np.ndindex(*a["kernel_shape"]):
        v = _tap(xp, k, dil, a["strides"], out_sp)
        at = np.broadcast_to(_tap(where, k, dil, a["strides"], out_sp), v.shape)
        if best is None:
            best, best_at = v.copy(), at.copy()
        else:
            better = v > best  # strict: the first maximum in scan order wins, as onnxruntime
            best = np.where(better, v, best)
            best_at = np.where(better, at, best_at)
    if len(op.results) == 1:
        return best
    nc = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * nd)
    return [best, (nc * int(np.prod(sp)) + best_at).astype(np.int64)]


@kernel("global_average_pool")
@channels_first
def _global_average_pool(op, x):
    return _like(x, x.mean(axis=tuple(range(2, x.ndim)), keepdims=True))


@kernel("global_max_pool")
@channels_first
def _global_max_pool(op, x):
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


# ---- dense -----------------------------------------------------------------------------------
@kernel("matmul")
def _matmul(op, a, b):
    dt = _accum_dtype(a, b)
    return np.matmul(a.astype(dt), b.astype(dt))


@kernel("gemm")
def _gemm(op, a, b, c=None):
    at = op.attrs
    a = a.T if at["trans_a"] else a
    b = b.T if at["trans_b"] else b
    dt = _accum_dtype(a, b)
    y = at["alpha"] * np.matmul(a.astype(dt), b.astype(dt))
    if c is not None:
        y = y + at["beta"] * c
    return _like(a, y)  # integer gemm stays integer


@kernel("fully_connected")
def _fully_connected(op, x, w, bias=None):
    dt = _accum_dtype(x, w)
    y = np.matmul(x.astype(dt), w.astype(dt).T)
    if bias is not None:
        y = y + bias
    return _activate(op, y)


# ---- normalization ---------------------------------------------------------------------------
def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


@kernel("batch_normalization")
@channels_first
def _batch_normalization(op, x, scale, bias, mean, var):
    r = x.ndim
    inv = 1.0 / np.sqrt(_per_channel(var, r) + op.attrs["epsilon"])
    return (x - _per_channel(mean, r)) * inv * _per_channel(scale, r) + _per_channel(bias, r)


@kernel("instance_normalization")
@channels_first
def _instance_normalization(op, x, scale, bias):
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + op.attrs["epsilon"])
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


@kernel("layer_normalization")
def _layer_normalization(op, x, scale, bias=None):
    axes = tuple(range(op.attrs["axis"], x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + op.attrs["epsilon"])
    y = (x - mean) * inv_std * scale
    if bias is not None:
        y = y + bias
    return [y, mean, inv_std]


@kernel("lrn")
@channels_first
def _lrn(op, x):
    a = op.attrs
    size, c = a["size"], x.shape[1]
    below, above = (size - 1) // 2, size - 1 - (size - 1) // 2  # floor and ceil of (size-1)/2
    sq = np.pad(x * x, [(0, 0), (below, above)] + [(0, 0)] * (x.ndim - 2))
    window = sum(sq[:, i:i + c] for i in range(size))
    return x / (a["bias"] + a["alpha"] / size * window) ** a["beta"]


@kernel("softmax")
def _softmax(op, x):
    e = np.exp(x - x.max(axis=op.attrs["axis"], keepdims=True))
    return e / e.sum(axis=op.attrs["axis"], keepdims=True)


@kernel("log_softmax")
def _log_softmax(op, x):
    ax = op.attrs["axis"]
    shifted = x - x.max(axis=ax, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=ax, keepdims=True))


# ---- data movement ---------------------------------------------------------------------------
@kernel("reshape")
def _reshape(op, x):
    return x.reshape(op.attrs["shape"])


@kernel("transpose")
def _transpose(op, x):
    return x.transpose(op.attrs["perm"])


@kernel("concat")
def _concat(op, *xs):
    return np.concatenate(xs, axis=op.attrs["axis"])


@kernel("split")
def _split(op, x):
    return np.split(x, np.cumsum(op.attrs["split"])[:-1], axis=op.attrs["axis"])


@kernel("slice")
def _slice(op, x):
    a = op.attrs
    for st, en, ax, step in zip(a["starts"], a["ends"], a["axes"], a["steps"]):
        x = np.take(x, np.arange(st, en, step), axis=ax)  # ends of -1 mean 'through index 0'
    return x


PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@kernel("pad")
def _pad(op, x):
    a = op.attrs
    r, p = x.ndim, a["pads"]
    # negative pads crop
    x = x[tuple(slice(max(0, -p[i]), x.shape[i] - max(0, -p[r + i])) for i in range(r))]
    width = [(max(0, p[i]), max(0, p[r + i])) for i in range(r)]
    if a["mode"] == "constant":
        value = a["value"]
        if _is_int(x) or x.dtype == np.bool_:
            value = np.asarray(value).astype(x.dtype)
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=PAD_MODES[a["mode"]])


@kernel("gather")
def _gather(op, x, idx):
    return np.take(x, idx.astype(np.int64), axis=op.attrs["axis"])  # negative indices count from the end


@kernel("tile")
def _tile(op, x):
    return np.tile(x, op.attrs["repeats"])


@kernel("expand")
def _expand(op, x):
    return np.broadcast_to(x, op.result.type.shape)


@kernel("depth_to_space")
def _depth_to_space(op, x):
    n, c, h, w = x.shape
    b = op.attrs["blocksize"]
    if op.attrs["mode"] == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:  # CRD
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


@kernel("space_to_depth")
def _space_to_depth(op, x):
    n, c, h, w = x.shape
    b = op.attrs["blocksize"]
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


# ---- resize ----------------------------------------------------------------------------------
def _source_coords(mode, n_in, n_out, scale, roi_lo, roi_hi, dtype=np.float64):
    """Where each output index samples the input along one axis (ONNX Resize, with the integer
    output length where the formula needs one, as onnxruntime does), computed in `dtype`."""
    x = np.arange(n_out, dtype=dtype)
    scale = dtype(scale)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = n_out / (scale * n_in)
        offset = n_in / 2.0 * (1.0 - adjustment)
        # onnxruntime adds its offset to a double quotient (its 0.5 literals are doubles)
        return (offset + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5).astype(dtype)
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if n_out > 1 else np.zeros(n_out)
    if mode == "align_corners":
        return x * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if mode == "tf_crop_and_resize":
        if n_out > 1:
            return roi_lo * (n_in - 1) + x * (roi_hi - roi_lo) * (n_in - 1) / (n_out - 1)
        return np.full(n_out, 0.5 * (roi_lo + roi_hi) * (n_in - 1))
    raise ValueError(f"resize: unknown coordinate_transformation_mode {mode!r}")


NEAREST_MODES = {
    "round_prefer_floor": lambda x: np.ceil(x - 0.5),
    "round_prefer_ceil": lambda x: np.floor(x + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


def _linear_taps(r, a):
    return [0, 1], [1.0 - r, r]


def _cubic_taps(r, a):
    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return [-1, 0, 1, 2], [far(r + 1), near(r), near(1 - r), far(2 - r)]


INTERPOLATIONS = {"linear": _linear_taps, "cubic": _cubic_taps}


def _interp_matrix(coords, n_in, taps, cubic_a, exclude_outside):
    """Dense [n_out, n_in] matrix mixing input samples into each output along one axis; taps that
    fall outside the input read the edge sample (or are dropped with exclude_outside)."""
    base = np.floor(coords)
    offsets, weights = taps(coords - base, cubic_a)
    idx = base.astype(np.int64)[:, None] + np.asarray(offsets)[None, :]
    wts = np.stack(weights, axis=1)
    if exclude_outside:
        wts = np.where((idx < 0) | (idx >= n_in), 0.0, wts)
        total = wts.sum(axis=1, keepdims=True)
        wts = wts / np.where(total == 0, 1.0, total)
    m = np.zeros((len(coords), n_in))
    np.add.at(m, (np.arange(len(coords))[:, None], np.clip(idx, 0, n_in - 1)), wts)
    return m


def _bilinear_taps(coords, n_in):
    """onnxruntime's bilinear taps along one axis: the clamped coordinate's two neighbours and the
    float32 distance to each (one half each where both are the edge sample)."""
    c = np.clip(coords, np.float32(0), np.float32(n_in - 1))
    lo = np.minimum(c.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    d_lo, d_hi = np.abs(c - lo.astype(np.float32)), np.abs(c - hi.astype(np.float32))
    edge = lo == hi
    return lo, hi, np.where(edge, np.float32(0.5), d_lo), np.where(edge, np.float32(0.5), d_hi)


def _resize_int_bilinear(x, ctm, scales, out_shape):
    """Integer linear resize of the two innermost axes in onnxruntime's arithmetic: float32
    coordinates and weights, the four products summed in its order, truncated. The separable
    float64 path differs from it by one in the last place on about a third of random uint8 images."""
    (h, w), (oh, ow) = x.shape[-2:], out_shape[-2:]
    y_lo, y_hi, dy_lo, dy_hi = _bilinear_taps(_source_coords(ctm, h, oh, scales[-2], 0, 1, np.float32), h)
    x_lo, x_hi, dx_lo, dx_hi = _bilinear_taps(_source_coords(ctm, w, ow, scales[-1], 0, 1, np.float32), w)
    v = x.astype(np.float32)

    def tap(rows, cols, wy, wx):
        return (wx[None, :] * wy[:, None]) * v[..., rows, :][..., cols]
    total = tap(y_lo, x_lo, dy_hi, dx_hi) + tap(y_lo, x_hi, dy_hi, dx_lo)
    total = total + tap(y_hi, x_lo, dy_lo, dx_hi)
    return _like(x, total + tap(y_hi, x_hi, dy_lo, dx_lo))


@kernel("resize")
def _resize(op, x, roi_operand=None, scales_operand=None):
    a = op.attrs
    r, out_shape = x.ndim, op.result.type.shape
    scales, roi = resize_geometry(a, r, roi_operand, scales_operand)
    ctm = a["coordinate_transformation_mode"]
    if (a["mode"] == "linear" and _is_int(x) and r >= 2 and ctm != "tf_crop_and_resize"
            and tuple(x.shape[:-2]) == tuple(out_shape[:-2])):
        return _resize_int_bilinear(x, ctm, scales, out_shape)
    outside = np.zeros((1,) * r, bool)
    y = x
    for ax in range(r):
        n_in, n_out = x.shape[ax], out_shape[ax]
        coords = _source_coords(ctm, n_in, n_out, scales[ax], roi[ax], roi[r + ax])
        if ctm == "tf_crop_and_resize":
            bad = (coords < 0) | (coords > n_in - 1)
            outside = outside | bad.reshape((1,) * ax + (n_out,) + (1,) * (r - ax - 1))
        if a["mode"] == "nearest":
            idx = NEAREST_MODES[a["nearest_mode"]](coords).astype(np.int64)
            y = np.take(y, np.clip(idx, 0, n_in - 1), axis=ax)
        else:
            m = _interp_matrix(coords, n_in, INTERPOLATIONS[a["mode"]], a["cubic_coeff_a"], a["exclude_outside"])
            y = np.moveaxis(np.tensordot(m, y.astype(np.float64), axes=([1], [ax])), 0, ax)
    if ctm == "tf_crop_and_resize":
        y = np.where(outside, a["extrapolation_value"], y)
    return _like(x, y)


# ---- reductions ------------------------------------------------------------------------------
def _reduction(fn, int_fn=None):
    def reduce(op, x):
        axes, keep = tuple(op.attrs["axes"]), bool(op.attrs["keepdims"])
        return (int_fn if int_fn and _is_int(x) else fn)(x, axes, keep)
    return reduce


def _extreme(np_fn, identity):
    """max/min that give the dtype's identity over an empty axis, as ONNX (numpy would raise)."""
    return lambda x, axes, keep: np_fn(x, axis=axes, keepdims=keep, initial=identity(x.dtype))


def _lowest(dt):
    return np.iinfo(dt).min if np.issubdtype(dt, np.integer) else -np.inf


def _highest(dt):
    return np.iinfo(dt).max if np.issubdtype(dt, np.integer) else np.inf


KERNELS.update({
    "reduce_sum": _reduction(lambda x, ax, k: np.sum(x, axis=ax, keepdims=k)),
    "reduce_mean": _reduction(lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
                              # integer mean truncates toward zero, as a C division of the sum
                              lambda x, ax, k: _int_div(np.sum(x, axis=ax, keepdims=k, dtype=np.int64),
                                                        np.int64(max(1, int(np.prod([x.shape[i] for i in ax])))))),
    "reduce_max": _reduction(_extreme(np.max, _lowest)),
    "reduce_min": _reduction(_extreme(np.min, _highest)),
    "reduce_prod": _reduction(lambda x, ax, k: np.prod(x, axis=ax, keepdims=k)),
    "reduce_l2": _reduction(lambda x, ax, k: _like(x, np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=ax,
                                                                       keepdims=k)))),
    "reduce_sum_square": _reduction(lambda x, ax, k: np.sum(x * x, axis=ax, keepdims=k)),
})


def _arg(np_fn):
    def arg(op, x):
        a = op.attrs
        ax = a["axis"]
        if a["select_last_index"]:
            i = x.shape[ax] - 1 - np_fn(np.flip(x, axis=ax), axis=ax)
        else:
            i = np_fn(x, axis=ax)
        i = i.astype(np.int64)
        return np.expand_dims(i, ax) if a["keepdims"] else i
    return arg


KERNELS["argmax"] = _arg(np.argmax)
KERNELS["argmin"] = _arg(np.argmin)


# ---- recurrent -------------------------------------------------------------------------------
# name -> (alpha default or None if unused, beta default or None if unused, f(x, alpha, beta)).
# alpha/beta values are consumed in activation order, only by the functions that take them, and
# the defaults are onnxruntime's.
RNN_ACTIVATIONS = {
    "relu": (None, None, lambda x, a, b: np.maximum(x, 0.0)),
    "tanh": (None, None, lambda x, a, b: np.tanh(x)),
    "sigmoid": (None, None, lambda x, a, b: _sigmoid(x)),
    "affine": (0.0, 0.0, lambda x, a, b: a * x + b),
    "leakyrelu": (0.01, None, lambda x, a, b: np.where(x >= 0, x, a * x)),
    "thresholdedrelu": (0.0, None, lambda x, a, b: np.where(x > a, x, 0.0)),
    "scaledtanh": (0.0, 0.0, lambda x, a, b: a * np.tanh(b * x)),
    "hardsigmoid": (0.2, 0.5, lambda x, a, b: _hard_sigmoid(x, a, b)),
    "elu": (1.0, None, lambda x, a, b: np.where(x >= 0, x, a * np.expm1(x))),
    "softsign": (None, None, lambda x, a, b: x / (1.0 + np.abs(x))),
    "softplus": (None, None, lambda x, a, b: np.logaddexp(0.0, x)),
}


def _rnn_activations(op, per_direction, directions):
    """The activation functions of each direction, as lists of one-argument callables."""
    names = list(op.attrs["activations"])
    if len(names) == per_direction and directions == 2:
        names = names * 2
    alphas, betas = iter(op.attrs["activation_alpha"]), iter(op.attrs["activation_beta"])
    fns = []
    for name in names:
        alpha0, beta0, f = RNN_ACTIVATIONS[name.lower()]
        alpha = next(alphas, alpha0) if alpha0 is not None else 0.0
        beta = next(betas, beta0) if beta0 is not None else 0.0
        fns.append(lambda x, f=f, a=alpha, b=beta: f(x, a, b))
    return [fns[d * per_direction:(d + 1) * per_direction] for d in range(directions)]


def _rnn_scan(op, x, seq_lens, states, step):
    """Shared time loop of lstm and gru.

    x: [seq, batch, input]; states: per direction, the list of initial state arrays [batch, hidden];
    step(d, acts, xt, states) -> new states (the first is the hidden state H).
    Returns Y [seq, dirs, batch, hidden] and the final states per direction; steps past a batch
    entry's sequence length leave its state alone and give zeros in Y, and the reverse direction
    runs each sequence backward from its own last step.
    """
    seq, batch = x.shape[:2]
    dirs = len(states)
    hidden = op.attrs["hidden_size"]
    lens = np.full(batch, seq, np.int64) if seq_lens is None else seq_lens.astype(np.int64)
    acts = _rnn_activations(op, {"lstm": 3, "gru": 2}[op.kind], dirs)
    y = np.zeros((seq, dirs, batch, hidden))
    final = []
    rows = np.arange(batch)
    for d in range(dirs):
        reverse = op.attrs["direction"] == "reverse" or d == 1
        st = [s.astype(np.float64) for s in states[d]]
        for t in range(seq):
            live = t < lens
            at = np.where(live, lens - 1 - t, 0) if reverse else np.full(batch, t)
            new = step(d, acts[d], x[at, rows], st)
            st = [np.where(live[:, None], n, s) for n, s in zip(new, st)]
            y[at[live], d, rows[live]] = st[0][live]
        st = [np.where((lens == 0)[:, None], 0.0, s) for s in st]
        final.append(st)
    return y, final


def _rnn_inputs(op, x, *states):
    """Move layout-1 (batch-major) operands to layout 0; returns x and the states."""
    if op.attrs["layout"]:
        return np.swapaxes(x, 0, 1), [None if s is None else np.swapaxes(s, 0, 1) for s in states]
    return x, list(states)


def _rnn_outputs(op, y, *finals):
    if op.attrs["layout"]:
        y = y.transpose(2, 0, 1, 3)
        finals = [np.swapaxes(f, 0, 1) for f in finals]
    return [y, *finals][: len(op.results)]


def _clipper(op):
    c = op.attrs["clip"]
    return (lambda v: np.clip(v, -c, c)) if c > 0 else (lambda v: v)


@kernel("lstm")
def _lstm(op, x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None):
    hid = op.attrs["hidden_size"]
    x, (h0, c0) = _rnn_inputs(op, x, h0, c0)
    dirs, batch = w.shape[0], x.shape[1]
    b = np.zeros((dirs, 8 * hid)) if b is None else b
    p = np.zeros((dirs, 3 * hid)) if p is None else p
    h0 = np.zeros((dirs, batch, hid)) if h0 is None else h0
    c0 = np.zeros((dirs, batch, hid)) if c0 is None else c0
    clip = _clipper(op)
    couple = op.attrs["input_forget"]

    def step(d, acts, xt, state):
        f, g, h = acts
        ht, ct = state
        pi, po, pf = np.split(p[d], 3)
        gates = xt @ w[d].T + ht @ r[d].T + b[d][:4 * hid] + b[d][4 * hid:]
        i, o, fg, c = np.split(gates, 4, axis=1)  # ONNX gate order: i, o, f, c
        i = f(clip(i + pi * ct))
        fg = 1.0 - i if couple else f(clip(fg + pf * ct))
        c_new = fg * ct + i * g(clip(c))
        o = f(clip(o + po * c_new))
        return [o * h(c_new), c_new]

    y, finals = _rnn_scan(op, x, seq_lens, [[h0[d], c0[d]] for d in range(dirs)], step)
    return _rnn_outputs(op, y, np.stack([s[0] for s in finals]), np.stack([s[1] for s in finals]))


@kernel("gru")
def _gru(op, x, w, r, b=None, seq_lens=None, h0=None):
    hid = op.attrs["hidden_size"]
    x, (h0,) = _rnn_inputs(op, x, h0)
    dirs, batch = w.shape[0], x.shape[1]
    b = np.zeros((dirs, 6 * hid)) if b is None else b
    h0 = np.zeros((dirs, batch, hid)) if h0 is None else h0
    clip = _clipper(op)
    before_reset = op.attrs["linear_before_reset"]

    def step(d, acts, xt, state):
        f, g = acts
        (ht,) = state
        wz, wr, wh = np.split(w[d], 3)  # ONNX gate order: z, r, h
        rz, rr, rh = np.split(r[d], 3)
        wbz, wbr, wbh, rbz, rbr, rbh = np.split(b[d], 6)
        z = f(clip(xt @ wz.T + ht @ rz.T + wbz + rbz))
        rg = f(clip(xt @ wr.T + ht @ rr.T + wbr + rbr))
        if before_reset:
            cand = g(clip(xt @ wh.T + wbh + rg * (ht @ rh.T + rbh)))
        else:
            cand = g(clip(xt @ wh.T + (rg * ht) @ rh.T + rbh + wbh))
        return [(1.0 - z) * cand + z * ht]

    y, finals = _rnn_scan(op, x, seq_lens, [[h0[d]] for d in range(dirs)], step)
    return _rnn_outputs(op, y, np.stack([s[0] for s in finals]))
