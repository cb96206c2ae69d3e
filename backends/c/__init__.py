"""C backend."""
import os
TARGETS_DIR = os.path.join(os.path.dirname(__file__), "targets")

from .backend import CBackend  # noqa: E402
