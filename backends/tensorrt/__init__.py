"""The TensorRT backend: engine plans for NVIDIA GPUs (Jetson, datacenter), built where TensorRT is."""
import os

from .backend import TensorRTBackend

TARGETS_DIR = os.path.join(os.path.dirname(__file__), "targets")

__all__ = ["TensorRTBackend", "TARGETS_DIR"]
