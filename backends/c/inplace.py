"""Which C kernels may write their result over an operand, and where that operand must sit.

The memory planner asks `inplace_operands(op, kernel)`: a list of (operand index, offset), the
offset being where the operand's buffer starts, in bytes, inside the result's buffer. The planner
shares the two buffers only when that operand dies at this op. Each rule below rests on the order
in which a template reads and writes; a template whose loops change must be checked against it
(tests/backends/c/test_inplace.py runs every rule in place).

  same index      elementwise.c.j2, q_unary.c.j2, q_binary.c.j2: element i of the result is written
                  after element i of each operand is read, and nothing before it is read again.
                  Offset 0, for operands of the result's shape and element size.
  pixel streaming q_conv_dsp.c.j2, q_conv_dot.c.j2, q_conv_nhwc.c.j2, q_dwconv_nhwc.c.j2,
                  q_conv_mve.c.j2 (channels last; those that copy a block's windows to scratch first): output pixels in raster order (alone or a few at a time), each written after
                  its receptive field was read, and a pixel reads nothing before its window's first
                  input pixel. With the operand `offset` bytes up, every pixel's output ends below
                  the first input byte it reads, so no write can reach an input still to be read.
  channel planes  q_dwconv_dsp.c.j2, q_dwconv_mve.c.j2: depthwise, one channel at a time, the channel's whole input
                  copied to scratch before any of its outputs is written, and output (pixel, c)
                  overwrites only input (pixel, c). Offset 0 when the result is not larger.
  kernel's own    Kernel.inplace, for kernels that know it themselves (the tiled op's, kernels/tiled.py).
"""
from __future__ import annotations

import numpy as np

ALIGN = 16
SAME_INDEX = ("elementwise.c.j2", "q_unary.c.j2", "q_binary.c.j2")
PIXEL_STREAMING = ("q_conv_dsp.c.j2", "q_conv_dot.c.j2", "q_conv_nhwc.c.j2", "q_dwconv_nhwc.c.j2",
                   "q_conv_mve.c.j2")
CHANNEL_PLANES = ("q_dwconv_dsp.c.j2", "q_dwconv_mve.c.j2")


def inplace_operands(op, kernel) -> list:
    if kernel.inplace:
        return list(kernel.inplace)
    if len(op.results) != 1:
        return []
    y = op.result
    if kernel.template in SAME_INDEX:
        return [(j, 0) for j, v in enumerate(op.operands)
                if v is not None and not v.is_const and v.type.shape == y.type.shape
                and v.type.np_dtype.itemsize == y.type.np_dtype.itemsize]
    if not _nhwc_conv(op):
        return []
    if kernel.template in PIXEL_STREAMING and not kernel.vars.get("direct"):
        return [(0, streaming_offset(op))]
    if kernel.template in CHANNEL_PLANES and op.result.type.nbytes <= op.operands[0].type.nbytes \
            and op.attrs["group"] == op.operands[0].type.shape[-1] == y.type.shape[-1]:
        return [(0, 0)]
    return []


def _nhwc_conv(op) -> bool:
    x = op.operands[0]
    return op.kind == "conv" and bool(op.attrs.get("channels_last")) and x is not None and not x.is_const \
        and x.type.rank == 4 and x.type.shape[0] == 1


def first_reads(op) -> np.ndarray:
    """For each output pixel (raster order), the flat index of the first input pixel its window reads."""
    _, ih_n, iw_n, _ = op.operands[0].type.shape
    _, oh_n, ow_n, _ = op.result.type.shape
    a = op.attrs
    (sh, sw), (dh, dw), pads = a["strides"], a["dilations"], a["pads"]

    def first(out_n, stride, dil, pad, size):
        start = np.arange(out_n) * stride - pad
        skip = np.where(start < 0, -(start // dil), 0)  # kernel taps above or left of the input
        return np.minimum(start + skip * dil, size - 1)

    rows = first(oh_n, sh, dh, pads[0], ih_n)
    cols = first(ow_n, sw, dw, pads[1], iw_n)
    return (rows[:, None] * iw_n + cols[None, :]).reshape(-1)


def streaming_offset(op) -> int:
    """The least offset (a multiple of ALIGN) of the operand inside the result's buffer such that
    output pixel q, written whole, ends at or below the first input byte its own window reads."""
    x, y = op.operands[0].type, op.result.type
    out_pixel = y.shape[-1] * y.np_dtype.itemsize
    in_pixel = x.shape[-1] * x.np_dtype.itemsize
    ends = (np.arange(1, y.shape[1] * y.shape[2] + 1, dtype=np.int64)) * out_pixel
    need = int(np.max(ends - first_reads(op) * in_pixel, initial=0))
    return max(0, -(-need // ALIGN) * ALIGN)
