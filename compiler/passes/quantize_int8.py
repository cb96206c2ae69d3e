"""quantize_int8: a calibrated float graph -> int8, in the IR's quantized form.

Needs graph.meta["calibration"] (the `calibrate` pass). The parameters follow the TFLite int8
scheme (compiler/quantization/scheme.py): activations asymmetric per tensor, weights symmetric per
output channel, int32 biases at input scale * weight scale.

One declared pattern does the work, applied to the ops in order (so an op's operands are
rewritten before it):
  * a float op of a kind the scheme covers, not named in --keep-float (ctx.options["keep_float"]),
    whose int8 form the backend accepts (`why_not` of a probe op)
    -> the op on quantized operands with quantized results: an operand that is the dequantize of
       a quantized value reads that value (the previous layer's codes, nothing recomputed); any
       other float operand gets a quantize; constants become int8 weights per channel and an
       int32 bias (conv, fully_connected), int8 per tensor otherwise (symmetric for a matmul's
       matrix, asymmetric for an elementwise operand); then a dequantize of each result for the
       readers still in float. Between two quantized layers that dequantize ends up read by
       nobody and goes; before an op that stays float it stays: mixed precision, with the
       border explicit (dequantize in, quantize out). A fused leaky_relu the int8 kernel lacks
       becomes its own int8 op (a table) after the layer instead of keeping the layer float.
The interface (ctx.options["io"]):
  * "float" (default): quantize at the inputs, dequantize at the outputs, except that a conv,
    fully_connected or matmul writing an output writes it as float straight from its int32
    accumulator (scale and bias in float) when the backend can: one rounding less on the numbers
    the user reads, and no int8 codes of them to keep;
  * "int8": inputs and outputs are int8 with their calibrated parameters (the C header states
    them), a float output gets a quantize.

Weights (ctx.options["weights"]): "int8" everywhere, as above; "int4": every conv and fully_connected layer
with constant weights gets 4-bit ones (steps, codes and a bias shift chosen layer after layer on the inputs
the 4-bit layers before give it, aiming at the float model's output, compiler/quantization/weights4.py; int8
where the backend has no 4-bit kernel for it);
"auto": 4-bit or int8 per layer, to fit the flash budget with the least loss (compiler/quantization/mixed.py,
which quantizes copies of the float graph with this same rewrite to measure each choice).

Result parameters (decided for the whole graph before rewriting, see `plan_quant`):
  * data movement (reshape, transpose, max_pool, slice, pad, ...): the operand's own, so the same
    codes move and nothing is requantized; such a group (a producer and the moves after it) takes
    the calibrated range of what its readers read (after a max_pool: the window maxima);
  * softmax: scale 1/256, zero point -128 ([0, 1) exactly, as the TFLite spec fixes it); but a softmax
    whose result is a float output of the model stays float (its logits dequantized): the user reads
    probabilities at full precision, and the int8 kernel's 1 KiB table of exponentials stays out of flash;
  * a tensor read only by a relu or clip takes the clamp's range (the producer saturates where
    the clamp would cut, so the clamp is exact);
  * any other: its calibrated range.

Why: int8 kernels are 4x smaller in flash and RAM and faster on MCUs; deciding per op with the
backend's own `why_not` keeps every op either natively int8 or float with explicit borders, and
the report (quantization_report) can say which stayed float and why (graph.meta["quantize_int8"]).
"""
from __future__ import annotations

import copy

import numpy as np

from edgecc.compiler.quantization.mixed import choose_precisions
from edgecc.compiler.quantization.plan import MOVES, plan_quant
from edgecc.compiler.quantization.scheme import (activation_quant, asymmetric_tensor, symmetric_tensor,
                                                 weights4_and_bias, weights_and_bias)
from edgecc.compiler.quantization.trace import lockstep, real
from edgecc.compiler.quantization.weights4 import InputMoments, choose, conv_patches, rows_patches
from edgecc.compiler.rewrite import ANY, Pattern, apply_patterns
from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import Op, Value
from edgecc.ir.interp import to_real
from edgecc.ir.types import TensorType

from . import register

CROSSING = ("quantize", "dequantize", "partition")
WEIGHTED = ("conv", "fully_connected")
ELEMENTWISE = ("add", "sub", "mul")
UNARY = """relu clip leaky_relu sigmoid tanh hard_swish hard_sigmoid elu selu gelu exp log sqrt reciprocal
abs neg erf softplus softsign mish""".split()
COVERED = set(MOVES) | set(WEIGHTED) | set(ELEMENTWISE) | set(UNARY) | {
    "matmul", "average_pool", "global_average_pool", "concat", "softmax"}
FLOAT_OUTPUT = ("conv", "fully_connected", "matmul")
INT8, INT4 = "i8", "i4"


# ---- one op into int8 ------------------------------------------------------------------------
class _Quantizer:
    """The pattern's match and replace, with what they share: the plan, the ops kept float and why."""

    def __init__(self, plan: dict, keep: set, backend, float_outputs=frozenset(), weights4=None):
        self.plan, self.keep, self.backend = plan, keep, backend
        self.float_outputs = float_outputs  # the graph outputs the interface gives as float
        self.weights4 = weights4 or {}  # weight constant name -> its 4-bit form (weights4.Weights4)
        self.float_ops: dict = {}  # op -> why it stays float

    def match(self, op, rw):
        if op.kind in CROSSING or op in self.float_ops or not op.results:
            return None
        if any(r.type.dtype != "f32" or r not in self.plan for r in op.results):
            return None
        found = self._int8_form(op, rw)
        if isinstance(found, str):
            self.float_ops[op] = found
            return None
        return found

    def _int8_form(self, op, rw):
        """(operand specs, result types, split activation or None) of op in int8, or why it stays float."""
        if op.name in self.keep or any(r.name in self.keep for r in op.results):
            return "kept float (--keep-float)"
        if op.kind not in COVERED:
            return f"the int8 scheme has no form of {op.kind}"
        if op.kind == "softmax" and all(r in self.float_outputs for r in op.results):
            return "a softmax the model outputs as float stays float (in int8 its probabilities would be " \
                   "rounded to 1/256, and the kernel needs a 1 KiB table of exponentials)"
        four = op.kind in WEIGHTED and len(op.operands) > 1 and op.operands[1].name in self.weights4
        found = self._form(op, rw, four)
        if four and isinstance(found, str):  # no 4-bit kernel for it: int8 weights
            found = self._form(op, rw, False)
        return found

    def _form(self, op, rw, four: bool):
        """_int8_form with 4-bit weights or not."""
        specs = []
        for j, v in enumerate(op.operands):
            spec = self._operand(op, j, v, specs, rw, four)
            if isinstance(spec, str):
                return spec
            specs.append(spec)
        if four and len(specs) == 2 and specs[1][4] is not None:  # a bias for the shift 4-bit weights bring
            specs.append(specs[1][4])
        types = [r.type.with_(dtype=INT8, quant=self.plan[r]) for r in op.results]
        reason = self._refused(op.kind, [_probe_value(s) for s in specs], types, op.attrs)
        if reason and op.attrs.get("activation") == "leaky_relu":
            split = self._split_activation(op, specs, types)
            if split is not None:
                return specs, types, split
        if reason:
            return f"no int8 kernel ({reason})"
        return specs, types, None

    def _refused(self, kind, operands, types, attrs):
        """Why the backend refuses a probe op of this form (None: it takes it)."""
        if self.backend is None:
            return None
        return self.backend.why_not(Op(kind, operands, [Value(f"probe{i}", t) for i, t in enumerate(types)], attrs))

    def _split_activation(self, op, specs, types):
        """A fused leaky_relu the int8 kernel lacks, as its own int8 op after it: (attrs of the op
        without it, the pre-activation type, the leaky_relu's attrs), or None. The pre-activation
        range is the result's mapped back through the (invertible, alpha > 0) activation."""
        alpha = float(op.attrs["act_params"][0])
        t = types[0]
        if alpha <= 0 or len(types) != 1:
            return None
        (scale,), (zp,) = t.quant.scale, t.quant.zero_point
        lo, hi = scale * (-128 - zp), scale * (127 - zp)
        pre = t.with_(quant=activation_quant(lo / alpha if lo < 0 else lo, hi))
        attrs = dict(op.attrs, activation="none", act_params=[])
        operands = [_probe_value(s) for s in specs]
        if self._refused(op.kind, operands, [pre], attrs) or \
                self._refused("leaky_relu", [Value("probe", pre)], [t], {"alpha": alpha}):
            return None
        return attrs, pre, {"alpha": alpha}

    def _operand(self, op, j, v, done, rw, four=False):
        """How operand j reads in int8: None, ("value", v) as it is, ("quantize", v, type), or
        ("const", name, codes, type); a string when it cannot. four: 4-bit weights."""
        if v is None:
            return None
        if v.type.dtype != "f32" and not (v.is_const and v.type.quant is not None):
            if op.kind == "gather" and j == 1:
                return ("value", v)
            return f"{op.kind} with a {v.type.dtype} operand"
        if v.is_const:
            return self._constant(op, j, v, done, four)
        if op.kind in WEIGHTED and j > 0:
            return f"{op.kind} with weights or bias computed at run time"
        d = rw.producer(v, "dequantize")
        if d is not None:
            return ("value", d.operands[0])
        if v not in self.plan:
            return f"operand %{v.name} has no calibrated range"
        return ("quantize", v, v.type.with_(dtype=INT8, quant=self.plan[v]))

    def _constant(self, op, j, v, done, four=False):
        """Constant operand j as int8 (weights per channel with the bias at their scale, else per tensor), or
        as 4-bit weights (`four`: their steps and codes chosen beforehand, compiler/quantization/weights4.py)."""
        data = to_real(v.type, v.data)  # a weight-only quantized model's codes, read as their real values
        if op.kind in WEIGHTED and j in (1, 2):
            if j == 2:
                return done[1][4]  # the bias came with the weights
            x = done[0]
            xq = _spec_type(x).quant
            if xq is None or xq.per_axis:
                return f"{op.kind} input without per-tensor parameters"
            bias = op.operands[2] if len(op.operands) > 2 else None
            real_bias = None if bias is None else to_real(bias.type, bias.data)
            if four:
                w, wq, b, bq = weights4_and_bias(data, self.weights4[v.name], real_bias, xq.scale[0])
            else:
                w, wq, b, bq = weights_and_bias(data, real_bias, xq.scale[0])
            bias_spec = None
            if b is not None and bias is not None:
                bias_spec = ("const", bias.name, b, bias.type.with_(dtype="i32", quant=bq))
            elif b is not None:  # 4-bit weights whose mean error needs a bias the layer had not
                bias_spec = ("const", f"{v.name}_bias", b, TensorType(b.shape, "i32", bq))
            return ("const", v.name, w, v.type.with_(dtype=INT4 if four else INT8, quant=wq), bias_spec)
        if op.kind in WEIGHTED and j == 0:
            return f"{op.kind} of a constant input"
        codes, q = (symmetric_tensor if op.kind == "matmul" else asymmetric_tensor)(data)
        return ("const", v.name, codes, v.type.with_(dtype=INT8, quant=q))

    def replace(self, op, found, rw):
        specs, types, split = found
        quantized: dict = {}
        operands = [self._materialize(s, rw, quantized) for s in specs]
        results = []
        for r, t in zip(op.results, types):
            # the codes take the tensor's name; an output's name stays on the float value users read
            results.append(Value(rw.name(f"{r.name}_q"), t) if rw.is_output(r) else Value(r.name, t))
        if split is None:
            q = rw.op(op.kind, operands, op.attrs, results, op.name)
        else:
            attrs, pre, act_attrs = split
            y = rw.op(op.kind, operands, attrs, [(f"{op.result.name}_preactivation", pre)], op.name).result
            q = rw.op("leaky_relu", [y], act_attrs, results, f"{op.name}_leaky_relu" if op.name else "")
        return [rw.op("dequantize", [y], {}, [(f"{r.name}_f32", r.type)], f"{op.name}_dequantize" if op.name else "")
                .result for y, r in zip(q.results, op.results)]

    def _materialize(self, spec, rw, quantized):
        if spec is None:
            return None
        if spec[0] == "value":
            return spec[1]
        if spec[0] == "const":
            return rw.const(f"{spec[1]}_q", spec[2], spec[3])
        _, v, t = spec
        if v in quantized:
            return quantized[v]
        existing = next((u.result for u in rw.users(v) if u.kind == "quantize" and u.result.type == t), None)
        if existing is None:
            existing = rw.op("quantize", [v], {}, [(f"{v.name}_q", t)], f"{v.name}_quantize").result
        quantized[v] = existing
        return existing


def _spec_type(spec):
    return spec[1].type if spec[0] == "value" else spec[-1] if spec[0] == "quantize" else spec[3]


def _probe_value(spec):
    if spec is None:
        return None
    if spec[0] == "value":
        return spec[1]
    if spec[0] == "quantize":
        return Value(f"{spec[1].name}_q", spec[2])
    return Value(spec[1], spec[3], spec[2])


# ---- the interface ---------------------------------------------------------------------------
def _int8_inputs(graph, plan) -> None:
    """Float inputs become int8 with their planned parameters; a dequantize feeds the float readers
    (the pattern then reads the codes directly wherever it quantizes)."""
    for v in graph.inputs:
        if v not in plan:
            continue
        real = Value(graph.unique_name(f"{v.name}_f32"), v.type)
        graph.replace_uses(v, real)
        v.type = v.type.with_(dtype=INT8, quant=plan[v])
        graph.ops.insert(0, Op("dequantize", [v], [real], {}, f"{v.name}_dequantize"))


def _int8_outputs(graph, plan) -> None:
    """Every float output becomes int8: the codes themselves when a dequantize made it, else a quantize."""
    for i, o in enumerate(list(graph.outputs)):
        if o.type.dtype != "f32" or o.producer is None:
            continue
        p, name = o.producer, o.name
        if p.kind == "dequantize" and p.operands[0].type.dtype == INT8 and p.operands[0] not in graph.outputs:
            y = p.operands[0]
            graph.outputs[i] = y
            graph.remove_dead()
            o.name = graph.unique_name(f"{name}_f32")  # still read by a float op, or gone
            y.name = name
            continue
        o.name = graph.unique_name(f"{name}_f32")
        q = Value(name, o.type.with_(dtype=INT8, quant=plan.get(o) or activation_quant(0.0, 1.0)))
        graph.ops.append(Op("quantize", [o], [q], {}, f"{name}_quantize"))
        graph.outputs[i] = q


class _FloatOutput:
    """dequantize(y) as a graph output, y the int8 result of a conv / fully_connected / matmul read
    by nothing else -> that op writing the float output itself."""

    def __init__(self, backend):
        self.backend = backend

    def match(self, d, rw):
        y = d.operands[0]
        p = rw.producer(y, *FLOAT_OUTPUT)
        if p is None or len(p.results) != 1 or rw.only_user(y) is not d or not rw.is_output(d.result):
            return None
        probe = Op(p.kind, p.operands, [Value(d.result.name, d.result.type)], p.attrs, p.name)
        if self.backend is not None and self.backend.why_not(probe):
            return None
        return p

    @staticmethod
    def replace(d, p, rw):
        return rw.op(p.kind, p.operands, p.attrs, [d.result], p.name).result


def _check_keep(graph, keep: set) -> None:
    known = {op.name for op in graph.ops} | {r.name for op in graph.ops for r in op.results}
    unknown = sorted(keep - known)
    if unknown:
        layers = [op.name for op in graph.ops if op.name]
        shown = ", ".join(layers[:8]) + (", ..." if len(layers) > 8 else "")
        raise EdgeccError(f"--keep-float: no layer named '{unknown[0]}' (layers after fusion: {shown})")


def _rewrite(graph, plan: dict, keep: set, ctx, io: str, weights4: dict):
    """Quantize `graph` in place (the rules of the module docstring; the layers whose weight constants
    `weights4` names get those 4-bit weights); the _Quantizer, which knows the layers left in float."""
    if io == "int8":
        _int8_inputs(graph, plan)
    quantizer = _Quantizer(plan, keep, ctx.backend, frozenset(graph.outputs) if io == "float" else frozenset(),
                           weights4)
    apply_patterns(graph, [Pattern("quantize_op", (ANY,), quantizer.match, quantizer.replace)], ctx,
                   record="quantize_int8")
    if io == "int8":
        _int8_outputs(graph, plan)
    else:
        fo = _FloatOutput(ctx.backend)
        apply_patterns(graph, [Pattern("float_output", ("dequantize",), fo.match, fo.replace)], ctx,
                       record="quantize_int8_float_output")
    return quantizer


def _weights4(graph, opts, keep: set, only=None) -> dict:
    """{weight constant name: its 4-bit form} for every conv and fully_connected layer with constant weights
    (but those --keep-float names), chosen in graph order on the calibration samples (weights4.py). Each layer
    is chosen on the inputs it reads once the layers before it have their 4-bit weights (the float graph and
    that twin run side by side, every sample at once, op by op), and aims at the float model's output: it
    corrects what the layers before it lost instead of adding to it. `only`: those weight names alone."""
    layers = {op for op in graph.ops if op.kind in WEIGHTED and len(op.operands) > 1 and op.operands[1].is_const
              and op.name not in keep and not any(r.name in keep for r in op.results)
              and (only is None or op.operands[1].name in only)}
    chosen, twin = {}, {}  # twin: the 4-bit graph's operands where they differ from the float graph's
    for op, ref, got in lockstep(graph, opts["calibration"], lambda op: twin.get(op), opts.get("progress")):
        if op not in layers:
            continue
        x, w = op.operands[0], op.operands[1]
        patches = (lambda a: conv_patches(a, op.attrs, w.type.shape)) if op.kind == "conv" \
            else (lambda a: rows_patches(a, w.type.shape[-1]))
        moments = InputMoments()
        for r, q in zip(ref, got):  # the float graph's patches too where the twin's differ
            moments.add(patches(real(x, q[x])), None if q[x] is r[x] else patches(real(x, r[x])))
        four = chosen[w.name] = choose(to_real(w.type, w.data), moments)
        twin[op] = _with_weights4(op, four)
    return chosen


def _with_weights4(op, four) -> tuple:
    """How the 4-bit twin of the float graph runs a layer whose weights are `four` (trace.lockstep's form): the
    weights they stand for (steps times codes) and its bias with the shift; a layer without a bias runs as a
    copy of itself that has one."""
    w = op.operands[1]
    weights = np.asarray(four.codes, np.float64) * np.asarray(four.scales, np.float64).reshape(
        (-1,) + (1,) * (len(w.type.shape) - 1))
    bias = op.operands[2] if len(op.operands) > 2 else None
    real_bias = np.zeros(w.type.shape[0]) if bias is None else to_real(bias.type, bias.data)
    if bias is None:
        bias = Value(w.name + ".bias", TensorType((w.type.shape[0],), w.type.dtype))
        op = Op(op.kind, [*op.operands[:2], bias], [Value(r.name, r.type) for r in op.results], op.attrs, op.name)
    return op, {1: weights.astype(w.type.np_dtype), 2: (real_bias + four.bias_shift).astype(bias.type.np_dtype)}


@register("quantize_int8")
def run(graph, ctx):
    cal = graph.meta.get("calibration")
    if cal is None:
        raise ValueError("quantize_int8 needs graph.meta['calibration']: run the calibrate pass first")
    opts = ctx.options
    keep = set(opts.get("keep_float", ()))
    _check_keep(graph, keep)
    io = opts.get("io", "float")
    meta = dict(graph.meta)
    graph.meta = {}
    float_graph = copy.deepcopy(graph)  # the reference the report compares against
    graph.meta = meta
    weights = opts.get("weights", "int8")
    weights4 = {} if weights == "int8" else _weights4(float_graph, opts, keep)
    choice = None
    if weights == "auto":
        def quantized(four: set):
            g = copy.deepcopy(float_graph)
            _rewrite(g, plan_quant(g, cal["ranges"]), keep, ctx, io, {n: weights4[n] for n in four})
            return g

        layers = {op.operands[1].name: op.name or op.result.name for op in float_graph.ops
                  if op.kind in WEIGHTED and len(op.operands) > 1 and op.operands[1].name in weights4}
        choice = choose_precisions(float_graph, quantized, dict(sorted(layers.items())), ctx)
        # chosen again with only those layers 4-bit before each (the others' float weights are closer to their int8)
        weights4 = _weights4(float_graph, opts, keep, only=set(choice["four"])) if choice["four"] else {}
    quantizer = _rewrite(graph, plan_quant(graph, cal["ranges"]), keep, ctx, io, weights4)
    live = set(graph.ops)
    graph.meta["quantize_int8"] = {
        "io": io, "float_graph": float_graph, "weights": weights, "auto": choice,
        "float_layers": [{"name": op.name, "op": op.kind, "reason": why}
                         for op, why in quantizer.float_ops.items() if op in live]}
    return graph
