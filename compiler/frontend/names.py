"""How the frontend names ONNX things: a node, in its errors and in the IR ops it lifts; the
default domain, which has two names."""
from __future__ import annotations

import onnx

from edgecc.ir.errors import EdgeccError

DEFAULT_DOMAINS = ("", "ai.onnx")


def node_label(node: onnx.NodeProto) -> str:
    """A node's name, or its first output when it has none."""
    return node.name or (node.output[0] if node.output else "")


def refuse(message: str, file: str, node: onnx.NodeProto = None) -> EdgeccError:
    """The one-line error refusing a model, naming the node and its op when there is one."""
    if node is None:
        return EdgeccError(message, file=file)
    return EdgeccError(message, file=file, node=node_label(node), op=node.op_type)
