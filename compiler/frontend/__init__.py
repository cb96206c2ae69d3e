"""The ONNX frontend: ONNX file -> IR graph. The only part of edgecc that imports onnx.

    read_model (load.py)    file checks, validation (validate*.py, limits.py), opset, domains, external data
    make_static (shapes.py) pin input shapes, fold constants and shape scaffolding, infer shapes
    lift_graph (lift.py)    one rule per op type (rules_*.py), then Q/DQ into quantized types (qdq.py)
"""
from __future__ import annotations

from typing import Optional

from edgecc.ir.graph import Graph

from .lift import lift_graph
from .limits import Limits
from .load import default_opset, read_model
from .shapes import make_static


def load_onnx(path, input_shapes: Optional[dict] = None, limits: Optional[Limits] = None) -> Graph:
    """Read, check and lift an ONNX model. `input_shapes` maps input names to static shapes;
    without it a symbolic first (batch) dimension becomes 1. `limits`: how large a model may be
    (limits.py; default: Limits()). User errors raise EdgeccError."""
    file = str(path)
    limits = limits or Limits()
    model = read_model(file, limits)
    opset = default_opset(model)
    model = make_static(model, opset, input_shapes, file, limits)
    return lift_graph(model, opset, file)
