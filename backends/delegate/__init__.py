"""Delegate backend: accelerator partitions (Edge TPU, Ethos-U) with the CPU islands in edgecc's C."""
import os
TARGETS_DIR = os.path.join(os.path.dirname(__file__), "targets")

from .backend import DelegateBackend  # noqa: E402
