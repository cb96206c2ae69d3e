"""Integer pooling: average_pool, max_pool, global_average_pool and global_max_pool of 8-bit quantized
tensors, channels first or channels last (channels innermost: the loops over channels vectorize).

Rounding follows onnxruntime's kernels for the QDQ patterns:
  - average pool (DequantizeLinear, AveragePool, QuantizeLinear, as onnxruntime keeps them in real models):
    float32 sum of the dequantized values over the window (in window order), divided by the count, then
    QuantizeLinear's rint(average / y_scale) + y_zero_point (the zero point after rounding: adding it first
    can turn a float32 5.4999995 into a tie; onnxruntime's own QLinearAveragePool, which it fuses into
    one-op graphs, adds it first, so the two differ by 1 on such ties);
  - global average pool (QLinearGlobalAveragePool): exact int32 sum, then the accumulator
    requantization rint(float(sum - count * zp_x) * x_scale / (y_scale * count)) + zp_y;
  - max pool: the maximum of the stored values (dequantizing is monotone), requantized through a
    table when the result's quantization differs.
"""
from __future__ import annotations

from . import CTYPES, Kernel, Unsupported, c_float, compact
from .quantized import quantized
from .requant import F32, per_tensor, qrange, requant_table


def _geometry(op, x, y, kernel, strides, pads, dilations):
    cl = bool(op.attrs.get("channels_last"))
    xs, ys = list(x.type.shape), list(y.type.shape)
    if cl:
        xs, ys = [xs[0], xs[-1], *xs[1:-1]], [ys[0], ys[-1], *ys[1:-1]]
    nd = len(xs) - 2
    if nd not in (1, 2):
        raise Unsupported(f"{nd}-D integer pooling")
    pad = lambda v, fill: [fill] * (2 - nd) + list(v)  # noqa: E731
    g = dict(N=xs[0], C=xs[1], CL=cl)
    g["IH"], g["IW"] = pad(xs[2:], 1)
    g["OH"], g["OW"] = pad(ys[2:], 1)
    g["KH"], g["KW"] = pad(kernel, 1)
    g["SH"], g["SW"] = pad(strides, 1)
    g["DH"], g["DW"] = pad(dilations, 1)
    g["PT"], g["PL"] = pad(pads[:nd], 0)
    # channels last: channel stride 1, pixel stride C; channels first: channel stride H*W, pixel stride 1
    g["XC"], g["XP"] = (1, g["C"]) if cl else (g["IH"] * g["IW"], 1)
    g["YC"], g["YP"] = (1, g["C"]) if cl else (g["OH"] * g["OW"], 1)
    return g


def _max_setup(x, y):
    """Max pooling keeps stored values; a table requantizes them when the result's quantization differs."""
    v = dict(init=qrange(x.type.dtype)[0], table=False)
    if x.type.quant == y.type.quant and x.type.dtype == y.type.dtype:
        return v, []
    return dict(v, table=True), [("table", requant_table(x, y))]


def _avg_quant(op, x, y):
    """(x scale, x zero point, y scale, y zero point, y min, y max) of an average pool."""
    sx, zx = per_tensor(x, op.kind)
    sy, zy = per_tensor(y, op.kind)
    return (sx, zx, sy, zy, *qrange(y.type.dtype))


def _check(op, x, y):
    for v in (x, y):
        if v.type.dtype not in ("i8", "u8") or v.type.quant is None:
            raise Unsupported(f"quantized {op.kind} needs 8-bit quantized tensors, %{v.name} is {v.type.dtype}")
    if len(op.results) > 1:
        raise Unsupported(f"quantized {op.kind} with indices")


@quantized("average_pool", "max_pool")
def qpool(op):
    x, y = op.operands[0], op.results[0]
    if x.type.quant is None and y.type.quant is None:
        return None
    _check(op, x, y)
    a = op.attrs
    nd = x.type.rank - 2
    g = _geometry(op, x, y, a["kernel_shape"], a["strides"], a["pads"], a.get("dilations", [1] * nd))
    v = dict(g, in_ctype=CTYPES[x.type.dtype], out_ctype=CTYPES[y.type.dtype], kind=op.kind)
    acc_bytes = 4 * g["C"] if g["CL"] else 0  # channels last: a row of accumulators (float or int32)
    if op.kind == "max_pool":
        small = compact.max_pool(op, g, x, y)
        if small is not None:
            return small
        extra, consts = _max_setup(x, y)
        return Kernel("q_pool.c.j2", dict(v, **extra), consts=consts, scratch=acc_bytes)
    quant = _avg_quant(op, x, y)
    small = compact.average_pool(op, g, x, y, quant, bool(a["count_include_pad"]))
    if small is not None:
        return small
    sx, zx, sy, zy, lo, hi = quant
    v.update(SX=c_float(sx), ZX=zx, SY=c_float(sy), ZY=int(zy), qmin=lo, qmax=hi,
             include_pad=bool(a["count_include_pad"]), KCOUNT=c_float(g["KH"] * g["KW"]))
    return Kernel("q_pool.c.j2", v, scratch=acc_bytes)


@quantized("global_average_pool", "global_max_pool")
def qglobal_pool(op):
    x, y = op.operands[0], op.result
    if x.type.quant is None and y.type.quant is None:
        return None
    _check(op, x, y)
    cl = bool(op.attrs.get("channels_last"))
    shape = x.type.shape
    n, c = shape[0], (shape[-1] if cl else shape[1])
    count = x.type.size // (n * c)
    v = dict(N=n, C=c, COUNT=count, CL=cl, in_ctype=CTYPES[x.type.dtype], out_ctype=CTYPES[y.type.dtype],
             kind=op.kind)
    if count * 255 >= 2**31:
        raise Unsupported("global pool over more than 2^23 values")
    if op.kind == "global_max_pool":
        extra, consts = _max_setup(x, y)
        return Kernel("q_global_pool.c.j2", dict(v, **extra), consts=consts)
    sx, zx, sy, zy, lo, hi = _avg_quant(op, x, y)
    scale = F32(F32(sx) / F32(F32(sy) * F32(count)))
    v.update(BIAS=-zx * count, SCALE=c_float(scale), ZY=zy, lo=c_float(lo - zy), hi=c_float(hi - zy))
    return Kernel("q_global_pool.c.j2", v)
