"""engine_plan.json: the TensorRT layers edgecc expects its ONNX to become, with their precision.

TensorRT fuses a convolution or matrix product with the Q/DQ pairs on its inputs, its bias, its
activation and a residual add that alone reads its result (with that add's own Q/DQ and activation)
into one layer; Q/DQ pairs elsewhere fold into their neighbours; the interface's Cast/Sub/Mul (and
Div/Round/Add/Clip/Cast) are element-wise layers of their own. One entry per expected layer, in
order: {"name", "kind", "onnx_nodes", "precision": "INT8" | "FP16" | "FP32", "sparse"}.
"""
from __future__ import annotations

COMPUTE = {"conv": "Convolution", "conv_transpose": "Deconvolution", "gemm": "MatrixMultiply",
           "fully_connected": "MatrixMultiply", "matmul": "MatrixMultiply"}
KINDS = {"average_pool": "Pooling", "max_pool": "Pooling", "global_average_pool": "Pooling",
         "global_max_pool": "Pooling", "softmax": "SoftMax", "log_softmax": "SoftMax",
         "reshape": "Shuffle", "transpose": "Shuffle", "identity": "Identity", "concat": "Concatenation",
         "resize": "Resize", "layer_normalization": "Normalization", "instance_normalization": "Normalization",
         "gather": "Gather", "slice": "Slice", "split": "Slice", "pad": "Padding", "tile": "Slice",
         "expand": "Slice", "lrn": "LRN", "argmax": "TopK", "argmin": "TopK", "cast": "Identity",
         "relu": "Activation", "clip": "Activation", "sigmoid": "Activation", "tanh": "Activation",
         "leaky_relu": "Activation", "elu": "Activation", "selu": "Activation", "softplus": "Activation",
         "softsign": "Activation", "hard_sigmoid": "Activation", "gelu": "Activation"}
ACTIVATIONS = ("relu", "clip", "leaky_relu", "sigmoid", "tanh", "elu", "selu", "hard_sigmoid")
SPARSE_PATTERNS = ("2:4", "1:4", "1:8", "1:16")  # at most 2 non-zeros in every 4: what sparse tensor cores take


def _layer(op) -> str:
    return op.name or op.results[0].name


def _fused_into(graph) -> dict:
    """IR op -> the compute op whose TensorRT layer takes it in (activations and residual adds)."""
    readers = {}
    for op in graph.ops:
        for v in op.operands:
            if v is not None:
                readers.setdefault(v, []).append(op)
    head = {}
    for op in graph.ops:
        if op.kind not in COMPUTE:
            continue
        tail = op
        while True:
            users = readers.get(tail.result, [])
            if len(users) != 1 or tail.result in graph.outputs:
                break
            nxt = users[0]
            if nxt.kind in ACTIVATIONS or (nxt.kind == "add" and all(v is not None and not v.is_const
                                                                        for v in nxt.operands)):
                head[nxt] = op
                tail = nxt
                continue
            break
    return head


def _precision(op, quantized: bool, float_precision: str) -> str:
    """INT8 where Q/DQ pairs feed a convolution, matrix product or residual add; in a quantized model
    every other layer is held to FP32 (it computes on the source's grid, or in float as edgecc keeps
    it: FP16 would round what the source rounds differently); a float model's layers run in the
    target's float precision."""
    if not quantized:
        return float_precision.upper()
    runtime = [v for v in op.operands if v is not None and not v.is_const]
    fused = op.kind in COMPUTE or (op.kind == "add" and len(runtime) == 2)
    weights = op.operands[1] if op.kind in COMPUTE and len(op.operands) > 1 else None
    int8_weights = weights is None or not weights.is_const or weights.type.quant is not None
    if fused and int8_weights and all(v.type.quant is not None and v.type.quant.axis is None for v in runtime):
        return "INT8"  # its inputs come through symmetric Q/DQ pairs (compiler/onnx_export/tensorrt.py)
    return "FP32"


def engine_plan(graph, origins: list, quantized: bool, float_precision: str) -> list:
    """origins: (ONNX node name, ONNX op type, IR op or None for the interface's conversions) in the
    order the writer emitted them."""
    head = _fused_into(graph)
    sparsity = graph.meta.get("sparsity", {})
    layers, by_op = [], {}
    for node, _, op in origins:
        owner = head.get(op, op)
        if owner in by_op:
            by_op[owner]["onnx_nodes"].append(node)
            continue
        entry = dict(name=node if owner is None else _layer(owner),
                     kind="ElementWise" if owner is None or owner.kind not in COMPUTE and owner.kind not in KINDS
                     else COMPUTE.get(owner.kind) or KINDS[owner.kind],
                     onnx_nodes=[node], precision=None, sparse=False)
        layers.append(entry)
        if owner is not None:
            by_op[owner] = entry
    for op, entry in by_op.items():
        entry["precision"] = _precision(op, quantized, float_precision)
        entry["sparse"] = op.kind in COMPUTE and sparsity.get(_layer(op), {}).get("pattern") in SPARSE_PATTERNS
    for entry in layers:
        if entry["precision"] is None:  # the interface's conversions to and from codes: exact in FP32
            entry["precision"] = "FP32"
    return layers
