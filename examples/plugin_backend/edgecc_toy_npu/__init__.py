"""A third-party edgecc backend, installed as its own package: the proof that adding an accelerator
touches nothing inside edgecc.

The Toy NPU runs int8 convolutions and fully connected layers (its target file says which, and
with what limits). Its backend is edgecc's delegate backend with one rule of its own: the NPU holds at
most MAX_WEIGHT_BYTES of weights per layer, so a bigger layer stays on the CPU with that reason.
"""
import os

from edgecc.backends.delegate import DelegateBackend
from edgecc.ir.analysis import weight_bytes

TARGETS_DIR = os.path.join(os.path.dirname(__file__), "targets")
MAX_WEIGHT_BYTES = 16 * 1024


class ToyNpuBackend(DelegateBackend):
    name = "toy-npu"

    def partition_why_not(self, op):
        if weight_bytes(op) > MAX_WEIGHT_BYTES:
            return f"{weight_bytes(op):,} bytes of weights (the Toy NPU holds {MAX_WEIGHT_BYTES:,} a layer)"
        return super().partition_why_not(op)
