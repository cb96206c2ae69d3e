"""Float32 softmax and log_softmax along any axis (the opset-13 meaning).

The tensor reads as [outer, n, inner] around the axis. Each run of n values is shifted by its
maximum before expf, so large inputs do not overflow. With inner == 1 the runs are contiguous
and the final scaling loop vectorizes; otherwise the runs are strided, walked one at a time.
"""
from __future__ import annotations

import numpy as np

from . import Kernel, kernel
from .float32 import require_float32


@kernel("softmax", "log_softmax")
def softmax(op):
    require_float32(op)
    shape = op.operands[0].type.shape
    axis = op.attrs["axis"] % max(len(shape), 1)
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:]))
    return Kernel("softmax.c.j2", dict(log=op.kind == "log_softmax", outer=outer, n=shape[axis] if shape else 1,
                                       inner=inner))
