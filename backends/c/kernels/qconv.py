"""Integer convolution: int8/uint8 activations, int8 or 4-bit weights (per output channel or per tensor),
int32 bias, requantized to the result type (or the raw int32 accumulator for an unquantized i32 result).
4-bit weights are computed as the int8 layer of weights 16 w (int4.py), by the same kernels reading them
packed: the DSP and compact ones, the host's dot products, and elsewhere the plain loop nest.

The loop nest depends on the kind of machine (quantized.family()):
  - Arm cores with the DSP extension: SMLAD kernels (qdsp.py) for int8 channels-last convs of one group
    and undilated depthwise convs;
  - the host: int16 dot products over each pixel's gathered receptive field (qdot.py), and depthwise a
    whole output row per vector loop;
  - everything else, and what the above do not cover, the portable kernels here:
      - depthwise, channels last (group == C == M): per output pixel an int32 row acc[C], one pass per tap
        over contiguous channels (weights reordered at compile time to [kh][kw][C]);
      - any other channels-last conv: per output pixel and output channel, dot products over contiguous
        input channels (a whole kernel row at once when dilation is 1), weights as given (OHWI);
      - channels first (or weights with a zero point): a plain loop nest over strided indices.
    The input zero point is folded into the bias at compile time (bias - zp_x * sum w) for pixels whose
    window lies inside the input; border pixels take only the taps inside and correct with the sum of
    the weights they used, which is the same as padding with the zero point.
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, Kernel, Unsupported, c_float, compact, int4
from .qdot import conv_strides, depthwise_rows, dot_kernel
from .qdsp import conv_dsp, depthwise_dsp
from .qmve import applies as mve_applies, conv_mve, depthwise_mve
from .quantized import family, quantized
from .requant import (F32, accumulator_bound, bias_values, check_int32, output_vars, per_tensor, qparams, qrange,
                      rounds_in_int32)


def _geometry(op):
    """Shapes as 2-D NHWC/NCHW numbers (1-D convs get H = 1) and the weights as [M, KH, KW, CG]."""
    x, w, y = op.operands[0], op.operands[1], op.result
    a, cl = op.attrs, bool(op.attrs.get("channels_last"))
    nd = x.type.rank - 2
    if nd not in (1, 2):
        raise Unsupported(f"{nd}-D integer convolution")
    xs, ys, ws = list(x.type.shape), list(y.type.shape), list(w.type.shape)
    if cl:
        xs, ys, ws = [xs[0], xs[-1], *xs[1:-1]], [ys[0], ys[-1], *ys[1:-1]], [ws[0], ws[-1], *ws[1:-1]]
    wdata = None
    if w.is_const:
        wdata = np.asarray(w.data, np.int64)
        wdata = np.moveaxis(wdata, -1, 1) if cl else wdata  # -> [M, CG, *k]
    pad = lambda v, fill: [fill] * (2 - nd) + list(v)  # noqa: E731
    g = dict(N=xs[0], C=xs[1], M=ys[1], CG=ws[1], group=a["group"])
    g["IH"], g["IW"] = pad(xs[2:], 1)
    g["OH"], g["OW"] = pad(ys[2:], 1)
    g["KH"], g["KW"] = pad(ws[2:], 1)
    g["SH"], g["SW"] = pad(a["strides"], 1)
    g["DH"], g["DW"] = pad(a["dilations"], 1)
    g["PT"], g["PL"] = pad(a["pads"][:nd], 0)
    g["PB"], g["PR"] = pad(a["pads"][nd:], 0)
    g["MG"] = g["M"] // g["group"]
    if wdata is not None:
        wdata = wdata.reshape(g["M"], g["CG"], g["KH"], g["KW"]).transpose(0, 2, 3, 1)  # [M, KH, KW, CG]
    return g, cl, wdata


def _padded(g) -> bool:
    """Does any output pixel's window reach outside the input?"""
    last_h = (g["OH"] - 1) * g["SH"] - g["PT"] + (g["KH"] - 1) * g["DH"]
    last_w = (g["OW"] - 1) * g["SW"] - g["PL"] + (g["KW"] - 1) * g["DW"]
    return g["PT"] > 0 or g["PL"] > 0 or last_h >= g["IH"] or last_w >= g["IW"]


def out_setup(op, y, acc_scale, acc_bound=None):
    """Output mode and requantization variables/tables shared by conv and the matmul family; acc_bound:
    the largest |accumulator| per output channel, when known (lets the clamp follow the rounding)."""
    consts = []
    if op.attrs.get("activation", "none") != "none" and y.type.quant is None:
        # the float and raw stores scale (or copy) the accumulator and nothing more
        raise Unsupported(f"fused activation on an integer {op.kind} with a {y.type.dtype} result")
    if y.type.dtype == "f32":
        scale = np.asarray(acc_scale, F32).reshape(-1)
        v = dict(out_kind="float", out_ctype="float", zp=0, lo="0", hi="0",
                 scale=c_float(scale[0]) if scale.size == 1 else None)
    elif y.type.quant is None:
        if y.type.dtype != "i32":
            raise Unsupported(f"integer {op.kind} with an unquantized {y.type.dtype} result")
        return dict(out_kind="raw", out_ctype="int32_t", zp=0, lo="0", hi="0", scale="1.0f"), consts
    else:
        qrange(y.type.dtype)
        sy, _ = per_tensor(y, op.kind)
        scale = (np.asarray(acc_scale, F32) / sy).astype(F32)
        v = dict(output_vars(op, y, scale), out_kind="q",
                 int_clamp=acc_bound is not None and rounds_in_int32(acc_bound, scale))
    if v["scale"] is None:
        consts.append(("scale", np.ascontiguousarray(scale.reshape(-1), F32)))
    v["scales"] = scale.reshape(-1)  # the multipliers themselves, for kernels that derive other forms
    return v, consts


@quantized("conv")
def qconv(op):
    x, w, b, y = op.operands[0], op.operands[1], (op.operands[2] if len(op.operands) > 2 else None), op.result
    if x.type.dtype not in ("i8", "u8") or w.type.dtype not in ("i8", "u8", "i4"):
        raise Unsupported(f"integer conv of {x.type.dtype} x {w.type.dtype}")
    if not w.is_const:
        raise Unsupported("integer conv with weights computed at run time")
    g, cl, wt = _geometry(op)
    sx, zx = per_tensor(x, "conv input")
    sw, zw = qparams(w)
    w4 = w.type.dtype == "i4"
    if w4:  # computed as the int8 layer of weights 16 w (int4.py)
        wt, sw = int4.int8_view(wt, sw, zw)
    acc_scale = (F32(sx) * sw).astype(F32) if len(sw) > 1 else np.asarray([F32(sx) * sw[0]], F32)
    bias = bias_values(b, acc_scale, g["M"])
    wzp = np.broadcast_to(zw, (g["M"],))
    out, consts = out_setup(op, y, acc_scale, accumulator_bound(bias, wt.reshape(g["M"], -1) - wzp[:, None],
                                                                x.type.dtype, zx))
    if y.type.dtype == "f32" and b is not None and b.type.dtype == "f32":
        raise Unsupported("integer conv to float with a float bias")
    v = dict(g, **out, x_ctype=CTYPES[x.type.dtype], w_ctype=CTYPES[w.type.dtype], ZX=zx,
             padded=_padded(g), w4=w4)
    small = compact.conv(op, g, wt, bias, out, consts, zx, x, w, wzp) if cl else None
    if small is not None:
        return small
    wsum = wt.reshape(g["M"], -1).sum(axis=1)
    depthwise = g["group"] == g["C"] == g["M"]
    fam = family()
    if fam in ("dsp", "mve") and cl and x.type.dtype == "i8" and w.type.dtype in ("i8", "i4") and not np.any(wzp != 0):
        if fam == "mve" and g["group"] == 1 and not w4 and mve_applies(out):
            return conv_mve(g, wt, bias, out, consts, zx)
        if g["group"] == 1:
            return conv_dsp(g, wt, bias, out, consts, zx, w4=w4)
        if depthwise and g["DH"] == g["DW"] == 1:
            mve = depthwise_mve(g, wt, bias, out, consts, zx) if fam == "mve" and not w4 else None
            return mve or depthwise_dsp(g, wt, bias, out, consts, zx, w4=w4)
    if fam == "host" and depthwise and cl and not w4:
        k = depthwise_rows(g, wt - wzp[:, None, None, None], bias, out, consts, x, zx)
        if k is not None:
            return k
    if fam == "host" and not depthwise:
        geo = dict(g, **conv_strides(g, cl), ZX=zx, padded=_padded(g))
        return dot_kernel(geo, wt.reshape(g["M"], -1) - wzp[:, None], bias, out, consts, x, w, w4=w4)
    if w4:
        # the plain loop nest on the packed weights, in the order _geometry gives them ([M][KH][KW][CG])
        consts += [("bias", check_int32(bias, "bias")), ("w", int4.packed_rows(wt.reshape(1, -1))[0])]
        v.update(_generic_strides(g, cl), has_wzp=False)
        v.update({k: n for k, n in _generic_strides(g, True).items() if k.startswith("W")})
        return Kernel("q_conv_generic.c.j2", v, consts=consts, replaced=(1,), prelude=int4.PRELUDE)
    if np.any(wzp != 0) or not cl:
        consts.append(("bias", check_int32(bias, "bias")))
        if np.any(wzp != 0):
            consts.append(("wzp", check_int32(wzp, "weight zero point")))
        strides = _generic_strides(g, cl)
        v.update(strides, has_wzp=bool(np.any(wzp != 0)))
        return Kernel("q_conv_generic.c.j2", v, consts=consts)
    folded = check_int32(bias - zx * wsum, "bias with the input zero point folded in")
    if depthwise:
        # depthwise: weights [C, KH, KW, 1] -> [KH][KW][C] so each tap reads channels contiguously
        taps_by_channel = np.ascontiguousarray(wt[:, :, :, 0].transpose(1, 2, 0)).astype(w.type.np_dtype)
        consts += [("bias", folded), ("w", taps_by_channel)]
        return Kernel("q_dwconv_nhwc.c.j2", v, consts=consts, replaced=(1,))
    consts.append(("bias", folded))
    if v["padded"] and zx != 0:
        consts.append(("bias_raw", check_int32(bias, "bias")))
    v["row_contig"] = g["DW"] == 1 and g["CG"] == g["C"]
    return Kernel("q_conv_nhwc.c.j2", v, consts=consts)


def _generic_strides(g, cl) -> dict:
    """Element strides of x, w (as given) and y for the plain loop nest."""
    IH, IW, C, OH, OW, M, KH, KW, CG = (g[k] for k in ("IH", "IW", "C", "OH", "OW", "M", "KH", "KW", "CG"))
    if cl:
        return dict(XN=IH * IW * C, XC=1, XH=IW * C, XW=C, YN=OH * OW * M, YC=1, YH=OW * M, YW=M,
                    WM=KH * KW * CG, WC=1, WKH=KW * CG, WKW=CG)
    return dict(XN=C * IH * IW, XC=IH * IW, XH=IW, XW=1, YN=M * OH * OW, YC=OH * OW, YH=OW, YW=1,
                WM=CG * KH * KW, WC=KH * KW, WKH=KW, WKW=1)

