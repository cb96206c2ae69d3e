"""The state of one lifting run and the view of one ONNX node that lifting rules work through.

A rule is a small function `rule(n: NodeView) -> None`, registered for ONNX op types with
`@lifts("Relu", ...)`. It reads inputs (`n.input(i)` for IR values, `n.const(i)` for constant
arrays that become attributes), attributes (`n.attr`), static shapes (`n.in_shape`,
`n.out_type`), and adds IR ops with `n.emit`, whose results become the node's outputs.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import Graph, Op, Value, fresh_name
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant, TensorType

from .dtypes import FOUR_BIT, elem_type_name, static_shape, tensor_type
from .load import node_label

RULES: dict[str, Callable] = {}


def lifts(*op_types: str):
    """Register the decorated function as the lifting rule of these ONNX op types."""
    def register(fn):
        for t in op_types:
            RULES[t] = fn
        return fn
    return register


class LiftContext:
    """One model being lifted: the IR graph under construction and what ONNX names map to."""

    def __init__(self, model: onnx.ModelProto, opset: int, file: str, graph_name: str):
        self.file, self.opset = file, opset
        self.graph = Graph(graph_name, [], [])
        self.values: dict[str, Value] = {}  # ONNX tensor name -> IR value
        self.arrays, self.four_bit = {}, {}  # four_bit: names of 4-bit initializers -> "i4" or "u4"
        for t in model.graph.initializer:
            a = numpy_helper.to_array(t)
            if t.data_type in FOUR_BIT:  # numpy reads them as 8-bit integers of the same values
                self.four_bit[t.name] = FOUR_BIT[t.data_type]
                a = a.astype(np.int8 if FOUR_BIT[t.data_type] == "i4" else np.uint8)
            self.arrays[t.name] = a
        self.infos = {vi.name: vi for vi in list(model.graph.input) + list(model.graph.value_info)
                      + list(model.graph.output)}
        self.op_names: set[str] = set()
        self.pending_dequant: dict[Op, Quant] = {}  # dequantize ops that read plain integers as `Quant`
        self.produced_quantized: list[Value] = []  # integers ONNX ops produce, typed quantized here

    def fail(self, message: str, node: Optional[onnx.NodeProto] = None):
        if node is None:
            raise EdgeccError(message, file=self.file)
        raise EdgeccError(message, file=self.file, node=node_label(node), op=node.op_type)

    def type_of(self, name: str, node=None) -> TensorType:
        """The static IR type of an ONNX value (without quantization)."""
        if name in self.arrays:
            a = self.arrays[name]
            elem = helper.np_dtype_to_tensor_dtype(a.dtype)
            t = tensor_type(a.shape, elem)
        else:
            vi = self.infos.get(name)
            shape = static_shape(vi) if vi is not None else None
            if shape is None:
                self.fail(f"value '{name}' has no static shape", node)
            elem = vi.type.tensor_type.elem_type
            t = tensor_type(shape, elem)
        if t is None:
            self.fail(f"value '{name}' has element type {elem_type_name(elem)}, which edgecc does not support", node)
        return t

    def value(self, name: str, node=None) -> Value:
        """The IR value of an ONNX tensor; a constant is added to the graph on first use."""
        v = self.values.get(name)
        if v is None:
            if name not in self.arrays:
                raise RuntimeError(f"ONNX value '{name}' is used before it is defined")
            v = self.constant(name, self.arrays[name], node=node)
            self.values[name] = v
        return v

    def constant(self, name: str, data: np.ndarray, quant: Optional[Quant] = None, node=None) -> Value:
        data = np.asarray(data)
        t = tensor_type(data.shape, helper.np_dtype_to_tensor_dtype(data.dtype))
        if t is None:
            self.fail(f"constant '{name}' has element type {data.dtype}, which edgecc does not support", node)
        if name in self.four_bit:
            return self.four_bit_constant(name, data, t, quant)
        return self.graph.add_constant(name, data, t.with_(quant=quant))

    def four_bit_constant(self, name: str, codes: np.ndarray, t: TensorType, quant: Optional[Quant]) -> Value:
        """A 4-bit initializer (its values as 8-bit integers, type t): symmetric weights (zero points 0, or 8
        for unsigned codes, which are then re-centred: u - 8 with zero point 0 means the same reals) are i4;
        any other 4-bit tensor keeps its values as the 8-bit integers they are, exactly."""
        offset = 8 if self.four_bit[name] == "u4" else 0
        if quant is None or any(z != offset for z in quant.zero_point):
            return self.graph.add_constant(name, codes, t.with_(quant=quant))
        centred = (codes.astype(np.int16) - offset).astype(np.int8)
        return self.graph.add_constant(name, centred, TensorType(t.shape, "i4", Quant(
            quant.scale, (0,) * len(quant.zero_point), quant.axis)))

    def op_name(self, base: str) -> str:
        return fresh_name(base, self.op_names)


class NodeView:
    """One ONNX node as lifting rules see it."""

    def __init__(self, ctx: LiftContext, node: onnx.NodeProto):
        self.ctx, self.node = ctx, node
        self.op_type, self.opset = node.op_type, ctx.opset
        self.label = node_label(node)
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.new_ops: list[Op] = []

    # ---- errors ----------------------------------------------------------------------------
    def fail(self, message: str):
        self.ctx.fail(message, self.node)

    def unsupported(self, attr: str, value):
        self.fail(f"attribute {attr}={value!r} is not supported")

    # ---- inputs ----------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.node.input)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def input(self, i: int) -> Optional[Value]:
        """The IR value of input i, None when the optional input is absent."""
        return self.ctx.value(self.node.input[i], self.node) if self.has_input(i) else None

    def inputs(self) -> list:
        return [self.input(i) for i in range(self.n_inputs)]

    def is_const(self, i: int) -> bool:
        return self.has_input(i) and self.node.input[i] in self.ctx.arrays

    def const(self, i: int, what: str = "") -> Optional[np.ndarray]:
        """The constant array of input i (None when absent); a non-constant input is a user error."""
        if not self.has_input(i):
            return None
        name = self.node.input[i]
        if name not in self.ctx.arrays:
            self.fail(f"input {i} ({what or name}) must be a constant for an ahead-of-time compiler")
        return self.ctx.arrays[name]

    def const_ints(self, i: int, what: str = "") -> Optional[list]:
        a = self.const(i, what)
        return None if a is None else [int(x) for x in np.asarray(a).reshape(-1)]

    def in_type(self, i: int) -> TensorType:
        return self.ctx.type_of(self.node.input[i], self.node)

    def in_shape(self, i: int) -> tuple:
        return self.in_type(i).shape

    # ---- attributes and outputs ------------------------------------------------------------
    def attr(self, name: str, default=None):
        v = self.attrs.get(name, default)
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, list) and v and isinstance(v[0], bytes):
            return [x.decode() for x in v]
        return v

    def choice(self, name: str, default: str, allowed) -> str:
        """A string attribute that must be one of `allowed`."""
        value = self.attr(name, default)
        if value not in allowed:
            self.unsupported(name, value)
        return value

    def has_output(self, i: int) -> bool:
        return i < len(self.node.output) and bool(self.node.output[i])

    @property
    def n_outputs(self) -> int:
        """Outputs up to the last present one."""
        n = len(self.node.output)
        while n and not self.node.output[n - 1]:
            n -= 1
        return n

    def out_type(self, i: int = 0) -> TensorType:
        return self.ctx.type_of(self.node.output[i], self.node)

    def out_shape(self, i: int = 0) -> tuple:
        return self.out_type(i).shape

    def axis(self, axis: int, rank: int, what: str = "axis") -> int:
        """A non-negative axis, checked against the rank."""
        if not -rank <= axis < max(rank, 1):
            self.fail(f"{what} {axis} is out of range for rank {rank}")
        return axis + rank if axis < 0 else axis

    # ---- building --------------------------------------------------------------------------
    def emit(self, kind: str, operands: list, attrs: Optional[dict] = None, *, types: Optional[list] = None,
             bind: bool = True, tag: str = "") -> Op:
        """Add one IR op. With `bind`, result i is ONNX output i (types default to the outputs');
        otherwise the results are helper values named after the node and `tag`."""
        ctx = self.ctx
        if types is None:
            types = [self.out_type(i) if self.has_output(i) else None for i in range(self.n_outputs)]
        results = []
        for i, t in enumerate(types):
            onnx_name = self.node.output[i] if bind and self.has_output(i) else ""
            base = onnx_name or f"{self.label}_{tag or 'out'}{i if len(types) > 1 else ''}"
            if t is None:
                self.fail(f"output {i} is absent but a later one is used; edgecc needs it present")
            results.append(Value(ctx.graph.unique_name(base), t))
            if onnx_name:
                ctx.values[onnx_name] = results[-1]
        op = Op(kind, list(operands), results, fill_defaults(kind, attrs or {}),
                name=ctx.op_name(f"{self.label}_{tag}" if tag else self.label))
        ctx.graph.ops.append(op)
        self.new_ops.append(op)
        return op

    def bind(self, i: int, value: Value, rename: bool = False) -> None:
        """Make ONNX output i this existing IR value (with `rename`, it takes the output's name)."""
        if self.has_output(i):
            self.ctx.values[self.node.output[i]] = value
            if rename:
                value.name = self.ctx.graph.unique_name(self.node.output[i])

    def helper(self, kind: str, operands: list, attrs: dict, type: TensorType) -> Value:
        """Add one op computing a helper value (not an ONNX output); its result."""
        return self.emit(kind, operands, attrs, types=[type], bind=False, tag=kind).result

    def constant(self, data: np.ndarray, tag: str, quant: Optional[Quant] = None) -> Value:
        return self.ctx.constant(f"{self.label}_{tag}", data, quant, self.node)


def float_type(shape) -> TensorType:
    return TensorType(tuple(shape), "f32")
