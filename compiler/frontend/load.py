"""Read an ONNX file and reject what the frontend cannot take, before any work is done on it.

Checks, each a one-line EdgeccError: the file exists, is readable and within the size limit, it
decodes as an ONNX model, passes validate.py (text, versions, structure, tensors and their sizes,
attributes), its default-domain opset is in range, every external-data tensor stays inside the
model's folder and within its file (checked before anything is read from disk), every node is from
the default domain (once model-local functions are inlined; onnxruntime's com.microsoft Q/DQ are
let through), and onnx's checker takes every node.
"""
from __future__ import annotations

import os

import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from edgecc.ir.errors import EdgeccError

from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import KNOWN_TYPES, Limits, data_bytes
from .names import DEFAULT_DOMAINS, node_label  # noqa: F401  (also imported from here by other modules)
from .validate import check_decoded, check_text, check_with_onnx, onnx_error
from .validate_graph import check_graph

# The default-domain opsets the frontend reads. The rules normalize what changed from opset 10
# on (attribute versus input forms of Clip, Pad, Split, Squeeze, Reduce*; Softmax; Resize).
# Opsets 22 to 28 only widened the element types of the ops we lift (bfloat16, float8, int4,
# ...) or added attributes the rules check (SpaceToDepth's mode, the quantizers' block_size),
# so for our element types they mean what opset 21 means.
OPSET_MIN, OPSET_MAX = 10, 28
# onnxruntime's own QuantizeLinear / DequantizeLinear: the standard ops, with the types the opset's lack
# (int4, int16 before opset 21). Its quantizer writes them for such models; the Q/DQ rules lift them.
CONTRIB_QDQ = {("com.microsoft", "QuantizeLinear"), ("com.microsoft", "DequantizeLinear")}


def read_model(path: str, limits: Limits = DEFAULT_LIMITS) -> onnx.ModelProto:
    """The model at `path`, with its external data loaded, or an EdgeccError saying why not."""
    file = str(path)
    if not os.path.exists(file):
        raise EdgeccError("no such file", file=file)
    if os.path.isdir(file):
        raise EdgeccError("is a directory, not an ONNX file", file=file)
    if os.path.getsize(file) > limits.max_model_bytes:
        raise EdgeccError(f"the file is {os.path.getsize(file):,} bytes, over the limit of {limits.max_model_bytes:,} "
                          f"per model (--max-model-bytes)", file=file)
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
    check_text(model, file)  # before anything reads a string field
    if not model.HasField("graph") or not model.opset_import:
        raise EdgeccError("not an ONNX model (no graph or no opset)", file=file)
    check_decoded(model, file, limits)
    check_opset(model, file)
    use_empty_default_domain(model)
    load_external_data(model, file)
    if model.functions:  # exporters may wrap modules as model-local functions: call sites become nodes
        try:
            model = onnx.inliner.inline_local_functions(model)
        except (onnx.checker.ValidationError, RuntimeError, ValueError) as e:  # a function calling itself, ...
            raise onnx_error(e, file, "cannot inline the model's functions: ") from None
        check_graph(model.graph, file, limits)  # the bodies, now nodes: their count and structure
    check_domains(model, file)
    check_with_onnx(model, file)
    return model


def use_empty_default_domain(model: onnx.ModelProto) -> None:
    """'ai.onnx' is the default domain's other name, which onnx's checker and inference do not take
    for it: '' instead, in place."""
    for holder in list(model.opset_import) + list(model.graph.node):
        if holder.domain == "ai.onnx":
            holder.domain = ""


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 0)


def check_opset(model: onnx.ModelProto, file: str) -> None:
    version = default_opset(model)
    if not OPSET_MIN <= version <= OPSET_MAX:
        raise EdgeccError(f"opset {version} is outside the supported range {OPSET_MIN}..{OPSET_MAX}; "
                          f"convert the model (onnx.version_converter)", file=file)


def check_domains(model: onnx.ModelProto, file: str) -> None:
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS and (node.domain, node.op_type) not in CONTRIB_QDQ:
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
        if "\x00" in location:
            raise EdgeccError(f"external data location of tensor '{t.name}' holds a NUL character", file=file)
        target = os.path.realpath(os.path.join(folder, location))
        inside = os.path.commonpath([target, os.path.realpath(folder)]) == os.path.realpath(folder)
        parts = location.replace("\\", "/").split("/")
        if not location or os.path.isabs(location) or ".." in parts or not inside:
            raise EdgeccError(f"external data of tensor '{t.name}' at '{location}' leaves the model's folder",
                              file=file)
        if not os.path.isfile(target):
            raise EdgeccError(f"external data file '{location}' of tensor '{t.name}' is missing", file=file)
        check_external_extent(t, location, os.path.getsize(target), file)
    if external:
        try:
            external_data_helper.load_external_data_for_model(model, folder)
        except (OSError, ValueError) as e:
            raise EdgeccError(f"cannot read external data: {e}", file=file) from None


def check_external_extent(t: onnx.TensorProto, location: str, file_bytes: int, file: str) -> None:
    """The tensor's bytes lie within its external file; its length is set to what its dims and type
    need, so that onnx reads that much and not the rest of a file however large."""
    entries = {e.key: e.value for e in t.external_data}
    try:
        offset = int(entries.get("offset", "0"))
    except ValueError:
        raise EdgeccError(f"external data offset '{entries['offset']}' of tensor '{t.name}' is not a number",
                          file=file) from None
    if t.data_type not in KNOWN_TYPES or any(d < 0 for d in t.dims):  # a subgraph's, not validated: onnx says
        return
    need = data_bytes(t.dims, t.data_type)
    if offset < 0 or offset + need > file_bytes:
        raise EdgeccError(f"external data file '{location}' holds {file_bytes:,} bytes; tensor '{t.name}' needs "
                          f"{need:,} from offset {offset:,}", file=file)
    if "length" not in entries:
        t.external_data.add(key="length", value=str(need))
