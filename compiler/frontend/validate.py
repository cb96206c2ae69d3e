"""Checking a decoded ONNX model before anything else reads it, so that a broken or hostile file is
refused with one EdgeccError naming the node and op where there is one, never a traceback, a hang
or an allocation the size of its lies.

    check_text(model, file)              first: every string field valid UTF-8 (protobuf decodes them
                                         lazily and raises wherever one is first read)
    check_decoded(model, file, limits)   versions, graph structure (validate_graph.py), tensors and
                                         sizes (validate_tensors.py, limits.py), attributes
                                         (validate_attributes.py)
    check_with_onnx(model, file)         once functions are inlined: onnx's own checker on every node
                                         (its strict shape inference is shapes.py's), in one line
    check_inferred_model(model, ...)     after each shape inference: computed shapes and sizes, and
                                         attributes against the ranks now known
"""
from __future__ import annotations

import re

import onnx

from edgecc.ir.errors import EdgeccError

from .limits import Limits
from .names import DEFAULT_DOMAINS, refuse
from .validate_attributes import check_attributes
from .validate_graph import check_graph
from .validate_tensors import check_inferred, check_initializers, check_value_infos

IR_MIN = 3  # the first IR version with opset imports
IR_MAX = onnx.IR_VERSION  # the newest the installed onnx (and its checker) reads


def check_text(model: onnx.ModelProto, file: str) -> None:
    """Refuse a model with a string field that is not UTF-8, saying where it is (a damaged file:
    protobuf requires UTF-8 there, and would raise wherever the field is first read)."""
    where = first_invalid_text(model)
    if where:
        raise refuse(f"{where} is not valid UTF-8 text: the file is damaged, or not ONNX", file)


def first_invalid_text(model: onnx.ModelProto):
    """The path (model.graph.node[3].name) of a string field that is not UTF-8, or None."""
    stack = [(model, "model")]
    while stack:
        message, where = stack.pop()
        try:
            for field, value in _set_fields(message):
                at = f"{where}.{field.name}"
                if field.type == field.TYPE_MESSAGE and field.is_repeated:
                    stack.extend((m, f"{at}[{i}]") for i, m in enumerate(value))
                elif field.type == field.TYPE_MESSAGE:
                    stack.append((value, at))
                elif field.type == field.TYPE_STRING:
                    texts = list(value) if field.is_repeated else [value]  # reading raises, or gives bytes
                    if any(isinstance(t, bytes) for t in texts):
                        return at
        except UnicodeDecodeError:
            return where
    return None


TENSOR_TEXT = [f for f in onnx.TensorProto.DESCRIPTOR.fields
               if f.name in ("name", "doc_string", "external_data", "metadata_props")]


def _set_fields(message):
    """(field, value) of the fields set on a message (upb gives an invalid string as bytes here); of a
    tensor, only those holding text, so that its raw data is not copied out for this."""
    if isinstance(message, onnx.TensorProto):
        return [(f, getattr(message, f.name)) for f in TENSOR_TEXT]
    return message.ListFields()


def check_decoded(model: onnx.ModelProto, file: str, limits: Limits) -> None:
    """Everything that can be checked on the decoded file, before external data or onnx reads it."""
    check_versions(model, file)
    check_graph(model.graph, file, limits)
    check_value_infos(model.graph, file, limits)
    check_initializers(model.graph, file, limits)
    check_attributes(model, file)


def check_versions(model: onnx.ModelProto, file: str) -> None:
    """The IR version one the installed onnx reads (before IR 4, initializers are graph inputs too);
    each domain's opset imported once, the default domain's among them (its range is
    load.check_opset's). The IR version may be older than the opset's: a common way to load newer
    models in older onnxruntimes."""
    if not IR_MIN <= model.ir_version <= IR_MAX:
        raise refuse(f"IR version {model.ir_version} is outside the range {IR_MIN}..{IR_MAX} that onnx "
                     f"{onnx.__version__} reads", file)
    seen = set()
    for o in model.opset_import:
        domain = "" if o.domain in DEFAULT_DOMAINS else o.domain
        if domain in seen:
            raise refuse(f"the opset of domain '{o.domain or 'ai.onnx'}' is imported twice", file)
        seen.add(domain)
    if "" not in seen:
        raise refuse("the model imports no opset of the default ONNX domain", file)
    inputs = {vi.name for vi in model.graph.input}
    loose = next((t.name for t in model.graph.initializer if t.name not in inputs), None)
    if model.ir_version < 4 and loose is not None:  # onnx's inference would not see it
        raise refuse(f"initializer '{loose}' is not a graph input, which IR version {model.ir_version} requires "
                     f"(IR 4 and later do not)", file)


def check_with_onnx(model: onnx.ModelProto, file: str) -> None:
    """onnx's checker on every node, with the model's opsets: what the checks above do not cover, such
    as op schemas, attribute names and types, and input and output counts.

    Node by node rather than check_model(full_check=True), which refuses two things edgecc takes on
    purpose: ops deprecated at the model's opset that exporters still write (Upsample; lifting takes
    them, or refuses them itself), and declared shapes that disagree with inferred ones (edgecc infers
    them again: they may be stale). The full check's strict shape inference is shapes.py's, on the
    shapes edgecc trusts; the rest of check_model is above (structure, tensors, versions). Control-flow
    nodes are left to lifting too: their subgraphs read the outer graph's values, which check_node
    does not see."""
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {("" if o.domain in DEFAULT_DOMAINS else o.domain): o.version for o in model.opset_import}
    for node in model.graph.node:
        if deprecated(node, ctx.opset_imports) or any(a.type in SUBGRAPHS for a in node.attribute):
            continue
        try:
            onnx.checker.check_node(node, ctx)
        except onnx.checker.ValidationError as e:
            raise refuse(f"onnx's checker refuses the node: {first_line(e)}", file, node) from None


SUBGRAPHS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def deprecated(node: onnx.NodeProto, opsets: dict) -> bool:
    version = opsets.get(node.domain)
    try:
        return version is not None and onnx.defs.get_schema(node.op_type, version, node.domain).deprecated
    except onnx.defs.SchemaError:  # no such op: check_node says so
        return False


def first_line(e: Exception) -> str:
    return next((TAG.sub("", ln).strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)


def check_inferred_model(model: onnx.ModelProto, file: str, limits: Limits) -> None:
    """After shape inference: attributes against every rank and shape, then computed values' shapes
    and sizes (a window too large for its input is named as such before its negative result dims)."""
    check_attributes(model, file, inferred=True)
    check_inferred(model, file, limits)


INFERENCE_NODE = re.compile(r"\(op_type:([^,]*), node name: (.*?)\): (.*)")
CHECKER_NODE = re.compile(r"==> Context: Bad node spec for node\. Name: (.*) OpType: (\S*)")
TAG = re.compile(r"\[\w+Error\]\s*")


def onnx_error(e: Exception, file: str, prefix: str) -> EdgeccError:
    """One line from onnx's multi-line checker or inference message: the first node it names, with
    its op, and what it says about it."""
    text = str(e)
    m = INFERENCE_NODE.search(text)
    if m:
        op, node, reason = m.groups()
        return EdgeccError(prefix + TAG.sub("", reason).strip(), file=file, node=node, op=op)
    m = CHECKER_NODE.search(text)
    if m:
        return EdgeccError(prefix + first_line(e), file=file, node=m.group(1), op=m.group(2))
    return EdgeccError(prefix + first_line(e), file=file)
