"""Make every shape in an ONNX graph static: pin the inputs, then fold and infer to a fixed point.

Symbolic input dimensions are pinned first (the first dimension, the batch, to 1 by default;
`input_shapes` chooses any input's whole shape). Then, until nothing changes: clean the graph
(onnx-graphsurgeon: drop dead nodes, sort), infer shapes (onnx, with data propagation), and fold
every node whose inputs are all known. A value whose shape is still not static afterwards is a
user error: the model needs an input shape the command line did not give.
"""
from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.logger import G_LOGGER

from edgecc.ir.errors import EdgeccError

from .dtypes import shape_text, static_shape
from .fold import fold_constants
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits
from .load import CONTRIB_QDQ, node_label
from .validate import check_inferred_model, onnx_error

MAX_ROUNDS = 64


def graph_inputs(model: onnx.ModelProto) -> list:
    """Graph inputs that are real inputs (old models also list their initializers as inputs)."""
    inits = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits]


def pin_inputs(model: onnx.ModelProto, input_shapes: dict | None, file: str) -> None:
    """Give every graph input a static shape, in place (initializers listed as inputs leave the list)."""
    input_shapes = dict(input_shapes or {})
    inputs = graph_inputs(model)
    if len(inputs) != len(model.graph.input):
        kept = [onnx.ValueInfoProto.FromString(vi.SerializeToString()) for vi in inputs]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        inputs = list(model.graph.input)
    unknown = sorted(set(input_shapes) - {vi.name for vi in inputs})
    if unknown:
        names = ", ".join(vi.name for vi in inputs)
        raise EdgeccError(f"--input-shape names '{unknown[0]}', which is not an input (inputs: {names})", file=file)
    for vi in inputs:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise EdgeccError(f"input '{vi.name}' is not a tensor", file=file)
        if vi.name in input_shapes:
            shape = [int(d) for d in input_shapes[vi.name]]
            if t.HasField("shape") and len(t.shape.dim) != len(shape):
                raise EdgeccError(f"input '{vi.name}' has rank {len(t.shape.dim)}, --input-shape gives {shape}",
                                  file=file)
            for d, want in zip(t.shape.dim, shape):
                if d.HasField("dim_value") and d.dim_value >= 0 and d.dim_value != want:
                    raise EdgeccError(f"input '{vi.name}' has shape {shape_text(vi)}, --input-shape gives {shape}",
                                      file=file)
        elif not t.HasField("shape"):
            raise EdgeccError(f"input '{vi.name}' has no shape; give one with --input-shape {vi.name}=...", file=file)
        else:
            shape = []
            for axis, d in enumerate(t.shape.dim):
                if d.HasField("dim_value") and d.dim_value >= 0:
                    shape.append(d.dim_value)
                elif axis == 0:
                    shape.append(1)  # the batch dimension: symbolic, or -1 as some exporters write it
                else:
                    raise EdgeccError(f"input '{vi.name}' has a dynamic dimension '{d.dim_param or '?'}' at axis "
                                      f"{axis} (shape {shape_text(vi)}); pin it with --input-shape {vi.name}=...",
                                      file=file)
        t.ClearField("shape")
        t.shape.SetInParent()
        for n in shape:
            t.shape.dim.add().dim_value = n


def declared_shapes(model: onnx.ModelProto) -> dict:
    """The static shapes the model itself declares for computed values (value infos, graph outputs).

    Inference starts from scratch (declarations may be stale), but where it cannot tell a shape,
    e.g. a Resize by run-time scales, the model's declaration is the only source: fill_declared
    takes it then."""
    infos = list(model.graph.value_info) + list(model.graph.output)
    return {vi.name: shape for vi in infos if (shape := static_shape(vi)) is not None}


def fill_declared(model: onnx.ModelProto, declared: dict) -> bool:
    """Give each inferred shape that is not static the declared one, where it fits (same rank, the
    known dimensions equal), in place; True when some shape was filled."""
    filled = False
    for vi in list(model.graph.value_info) + list(model.graph.output):
        want = declared.get(vi.name)
        t = vi.type.tensor_type
        if want is None or static_shape(vi) is not None or not vi.type.HasField("tensor_type"):
            continue
        dims = t.shape.dim if t.HasField("shape") else None
        if dims is not None and (len(dims) != len(want) or any(
                d.HasField("dim_value") and d.dim_value != w for d, w in zip(dims, want))):
            continue
        t.ClearField("shape")
        t.shape.SetInParent()
        for w in want:
            t.shape.dim.add().dim_value = w
        filled = True
    return filled


def run_inference(model: onnx.ModelProto, file: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as e:
        raise onnx_error(e, file, "shape inference failed: ") from None


def type_contrib_qdq(model: onnx.ModelProto) -> bool:
    """onnx's inference skips onnxruntime's com.microsoft QuantizeLinear / DequantizeLinear (load.CONTRIB_QDQ):
    their results are typed here, in place, as the standard ops' (the input's shape; a quantize gives its
    zero point's element type, uint8 without one, a dequantize its scale's). True when one was typed."""
    inits = {t.name: t for t in model.graph.initializer}
    infos = {vi.name: vi for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)}

    def elem(name):
        if name in inits:
            return inits[name].data_type
        vi = infos.get(name)
        return vi.type.tensor_type.elem_type if vi is not None else 0

    def shape(name):
        if name in inits:
            return list(inits[name].dims)
        vi = infos.get(name)
        return list(static_shape(vi)) if vi is not None and static_shape(vi) is not None else None

    typed = False
    for node in model.graph.node:
        if (node.domain, node.op_type) not in CONTRIB_QDQ or not node.output or shape(node.output[0]) is not None:
            continue
        dims = shape(node.input[0])
        if dims is None:
            continue
        if node.op_type == "QuantizeLinear":
            out = elem(node.input[2]) if len(node.input) > 2 and node.input[2] else onnx.TensorProto.UINT8
        else:
            out = elem(node.input[1])
        vi = infos.get(node.output[0])
        if vi is None:
            vi = model.graph.value_info.add()
            vi.name = node.output[0]
        vi.CopyFrom(onnx.helper.make_tensor_value_info(node.output[0], out, dims))
        typed = True
    return typed


def infer_shapes(model: onnx.ModelProto, file: str, declared: dict | None = None) -> onnx.ModelProto:
    """onnx shape inference from scratch (stale value infos and output shapes dropped); shapes it
    leaves open are taken from `declared` (see declared_shapes), or are those of onnxruntime's
    Q/DQ (type_contrib_qdq), and inferred onward from there."""
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    model = run_inference(model, file)
    for _ in range(MAX_ROUNDS):
        if not type_contrib_qdq(model):
            break
        model = run_inference(model, file)  # the values after them
    if declared and fill_declared(model, declared):
        model = run_inference(model, file)  # values computed from the filled ones
    return model


def clean(model: onnx.ModelProto) -> onnx.ModelProto:
    """Dead nodes and unused constants dropped, nodes sorted (onnx-graphsurgeon). Its log stays quiet: it
    prints its warnings (e.g. a thousand lines for repeated node names) to stdout, where --emit ir writes
    the IR; edgecc says what is wrong with a model itself."""
    with G_LOGGER.suppress():
        graph = gs.import_onnx(model)
        graph.cleanup().toposort()
        cleaned = gs.export_onnx(graph, do_type_check=False)
    cleaned.ir_version = model.ir_version
    return cleaned


def check_static(model: onnx.ModelProto, file: str) -> None:
    infos = {vi.name: vi for vi in list(model.graph.value_info) + list(model.graph.output)}
    for node in model.graph.node:
        for name in node.output:
            if not name:
                continue
            vi = infos.get(name)
            if vi is None or static_shape(vi) is None:
                shape = "unknown" if vi is None else shape_text(vi)
                raise EdgeccError(f"result '{name}' has no static shape ({shape}): it depends on values known "
                                  f"only at run time, or on input dimensions to pin with --input-shape",
                                  file=file, node=node_label(node), op=node.op_type)


def make_static(model: onnx.ModelProto, opset: int, input_shapes: dict | None, file: str,
                limits: Limits = DEFAULT_LIMITS) -> onnx.ModelProto:
    """The model with static shapes everywhere, scaffolding folded, value infos for every value. Each
    round's inferred shapes are checked (validate.check_inferred_model) before folding computes any."""
    pin_inputs(model, input_shapes, file)
    declared = declared_shapes(model)
    for _ in range(MAX_ROUNDS):
        model = infer_shapes(clean(model), file, declared)
        check_inferred_model(model, file, limits)
        if not fold_constants(model, opset):
            break
    else:
        raise RuntimeError(f"{file}: constant folding did not reach a fixed point in {MAX_ROUNDS} rounds")
    check_static(model, file)
    return model
