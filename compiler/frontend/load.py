"""Read an ONNX file and reject what the frontend cannot take, before any work is done on it.

Checks, each a one-line EdgeccError: the file exists and is readable, it decodes as an ONNX
model, its default-domain opset is in range, every node is from the default domain (once
model-local functions are inlined), and every external-data tensor stays inside the model's
folder (checked before anything is read from disk).
"""
from __future__ import annotations

import os

import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from edgecc.ir.errors import EdgeccError

# The default-domain opsets the frontend reads. The rules normalize what changed from opset 10
# on (attribute versus input forms of Clip, Pad, Split, Squeeze, Reduce*; Softmax; Resize).
# Opsets 22 to 28 only widened the element types of the ops we lift (bfloat16, float8, int4,
# ...) or added attributes the rules check (SpaceToDepth's mode, the quantizers' block_size),
# so for our element types they mean what opset 21 means.
OPSET_MIN, OPSET_MAX = 10, 28
DEFAULT_DOMAINS = ("", "ai.onnx")


def node_label(node: onnx.NodeProto) -> str:
    """How errors and IR op names call a node: its name, or its first output when it has none."""
    return node.name or (node.output[0] if node.output else "")


def read_model(path: str) -> onnx.ModelProto:
    """The model at `path`, with its external data loaded, or an EdgeccError saying why not."""
    file = str(path)
    if not os.path.exists(file):
        raise EdgeccError("no such file", file=file)
    if os.path.isdir(file):
        raise EdgeccError("is a directory, not an ONNX file", file=file)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise EdgeccError(f"cannot read the file: {e.strerror}", file=file) from None
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise EdgeccError("not an ONNX model (the protobuf does not decode: truncated or another format)",
                          file=file) from None
    if not model.HasField("graph") or not model.opset_import:
        raise EdgeccError("not an ONNX model (no graph or no opset)", file=file)
    check_opset(model, file)
    if model.functions:  # exporters may wrap modules as model-local functions: call sites become nodes
        model = onnx.inliner.inline_local_functions(model)
    check_domains(model, file)
    load_external_data(model, file)
    return model


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 0)


def check_opset(model: onnx.ModelProto, file: str) -> None:
    version = default_opset(model)
    if not OPSET_MIN <= version <= OPSET_MAX:
        raise EdgeccError(f"opset {version} is outside the supported range {OPSET_MIN}..{OPSET_MAX}; "
                          f"convert the model (onnx.version_converter)", file=file)


def check_domains(model: onnx.ModelProto, file: str) -> None:
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            raise EdgeccError(f"op from unknown domain '{node.domain}' is not supported", file=file,
                              node=node_label(node), op=node.op_type)


def _external_tensors(graph: onnx.GraphProto):
    for t in graph.initializer:
        yield t
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _external_tensors(a.g)
            for g in a.graphs:
                yield from _external_tensors(g)


def load_external_data(model: onnx.ModelProto, file: str) -> None:
    """Check every external-data location stays inside the model's folder, then read the data."""
    folder = os.path.dirname(os.path.abspath(file))
    external = [t for t in _external_tensors(model.graph) if t.data_location == onnx.TensorProto.EXTERNAL]
    for t in external:
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        target = os.path.realpath(os.path.join(folder, location))
        inside = os.path.commonpath([target, os.path.realpath(folder)]) == os.path.realpath(folder)
        parts = location.replace("\\", "/").split("/")
        if not location or os.path.isabs(location) or ".." in parts or not inside:
            raise EdgeccError(f"external data of tensor '{t.name}' at '{location}' leaves the model's folder",
                              file=file)
        if not os.path.isfile(target):
            raise EdgeccError(f"external data file '{location}' of tensor '{t.name}' is missing", file=file)
    if external:
        try:
            external_data_helper.load_external_data_for_model(model, folder)
        except (OSError, ValueError) as e:
            raise EdgeccError(f"cannot read external data: {e}", file=file) from None
