"""Sliding-window attributes (Conv, ConvTranspose, pools) made explicit: auto_pad becomes pads.

ONNX lets a window op say `auto_pad=SAME_UPPER` or `VALID` instead of pads, and leaves strides,
dilations and pads to defaults; the IR wants every number written down.
"""
from __future__ import annotations

from .context import NodeView


def window_attrs(n: NodeView, spatial: tuple, kernel: list) -> dict:
    """strides, dilations and explicit pads (begins then ends) of a Conv or pool node."""
    nd = len(spatial)
    strides = list(n.attr("strides", [1] * nd))
    dilations = list(n.attr("dilations", [1] * nd))
    auto_pad = n.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = list(n.attr("pads", [0] * (2 * nd)))
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        pads = begins + ends
    else:
        n.unsupported("auto_pad", auto_pad)
    if len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd:
        n.fail(f"strides/dilations/pads do not fit {nd} spatial dimensions")
    return {"strides": strides, "dilations": dilations, "pads": pads}


def conv_transpose_attrs(n: NodeView, spatial: tuple, kernel: list) -> dict:
    """strides, dilations, output_padding and explicit pads of a ConvTranspose node
    (an `output_shape` or SAME auto_pad is turned into the pads that give that shape)."""
    nd = len(spatial)
    strides = list(n.attr("strides", [1] * nd))
    dilations = list(n.attr("dilations", [1] * nd))
    output_padding = list(n.attr("output_padding", [0] * nd))
    auto_pad = n.attr("auto_pad", "NOTSET")
    output_shape = n.attr("output_shape")
    if output_shape is not None:
        output_shape = list(output_shape)[-nd:]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [size * s for size, s in zip(spatial, strides)]
    if auto_pad not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
        n.unsupported("auto_pad", auto_pad)
    if output_shape is not None:
        begins, ends = [], []
        for i in range(nd):
            total = (strides[i] * (spatial[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
                     - output_shape[i])
            if total < 0:  # a larger output than the windows cover: zeros at the end
                output_padding[i] -= total
                total = 0
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        pads = begins + ends
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    else:
        pads = list(n.attr("pads", [0] * (2 * nd)))
    return {"strides": strides, "dilations": dilations, "pads": pads, "output_padding": output_padding}
