"""The TensorRT backend: what a Jetson or datacenter user needs to build the engine plan in one command.

It writes, from the graph after the target's passes (never changing it):
  * NAME.trt.onnx: the graph as ONNX in TensorRT's explicit-quantization form
    (compiler/onnx_export/tensorrt.py): symmetric Q/DQ where TensorRT fuses them, the interface kept;
  * build_engine.py: TensorRT's Python builder for it (INT8 / FP16 flags, SPARSE_WEIGHTS for the 2:4
    layers the sparsity pass found, workspace, timing cache, the fixed shapes as the optimization
    profile, FP32 for the layers edgecc keeps out of INT8), writing NAME.plan; trtexec.sh, the same
    build as one trtexec line; compare.sh with data_loader.py: polygraphy comparing the engine with
    onnxruntime on a golden input;
  * engine_plan.json (plan.py): the TensorRT layers edgecc expects, their ONNX nodes, precision and
    sparsity; README.md with the three commands; report.json.
An op TensorRT's ONNX parser does not take (the target file's [options] unsupported) is refused in one
line naming it: there is no CPU island for TensorRT here.
"""
from __future__ import annotations

import json
import os
import shlex

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from edgecc.backends.base import Backend
from edgecc.ir.errors import EdgeccError

from .plan import engine_plan

TEMPLATES = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "codegen_templates", "tensorrt"))


def _shape(v) -> list:
    return [int(d) for d in v.type.shape]


class TensorRTBackend(Backend):
    name = "tensorrt"

    def why_not(self, op) -> str | None:
        return self.target.options.get("unsupported", {}).get(op.kind)

    def emit(self, graph, outdir: str, name: str = "model") -> list:
        from edgecc.compiler.onnx_export.tensorrt import to_tensorrt_onnx

        for op in graph.ops:
            why = self.why_not(op)
            if why:
                raise EdgeccError(f"TensorRT cannot run it: {why}", node=op.name, op=op.kind)
        model, changes, origins = to_tensorrt_onnx(graph)
        quantized = any(op_type == "QuantizeLinear" for _, op_type, _ in origins)
        float_precision = self.target.options.get("float_precision", "fp16")
        layers = engine_plan(graph, origins, quantized, float_precision)
        compute = _compute_nodes(model)
        sparse = [n for e in layers if e["sparse"] for n in e["onnx_nodes"] if n in compute]
        float_layers = [n for e in layers if quantized and e["precision"] == "FP32" for n in e["onnx_nodes"]]
        ctx = dict(
            name=name, onnx=f"{name}.trt.onnx", plan=f"{name}.plan", cache=f"{name}.timing.cache",
            int8=quantized, fp16=float_precision == "fp16", sparse_layers=sparse, float_layers=float_layers,
            workspace=int(self.target.options.get("workspace_bytes", 1 << 30)),
            inputs=[dict(name=v.name, shape=_shape(v)) for v in graph.inputs],
            outputs=[dict(name=v.name, shape=_shape(v)) for v in graph.outputs],
            atol=1e-3 if not quantized else 0.05, rtol=1e-3 if not quantized else 0.05)
        env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                          trim_blocks=True, lstrip_blocks=True)
        env.filters["py"] = repr  # every name from the model reaches Python source as a literal
        env.filters["sh"] = shlex.quote  # ... and shell scripts quoted
        # trtexec's lists: each name in single quotes (a name may hold ':' or ',')
        env.filters["trt_shapes"] = lambda ins: ",".join(f"'{i['name']}':{'x'.join(map(str, i['shape']))}"
                                                         for i in ins)
        env.filters["trt_fp32"] = lambda names: ",".join(f"'{n}':fp32" for n in names)
        os.makedirs(outdir, exist_ok=True)
        written = []

        def write(rel, data, mode=0o644):
            path = os.path.join(outdir, rel)
            with open(path, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            os.chmod(path, mode)
            written.append(path)

        write(ctx["onnx"], model.SerializeToString())
        write("build_engine.py", env.get_template("build_engine.py.j2").render(**ctx), 0o755)
        write("trtexec.sh", env.get_template("trtexec.sh.j2").render(**ctx), 0o755)
        write("compare.sh", env.get_template("compare.sh.j2").render(**ctx), 0o755)
        write("data_loader.py", env.get_template("data_loader.py.j2").render(**ctx))
        write("README.md", env.get_template("README.md.j2").render(**ctx))
        write("engine_plan.json", json.dumps(dict(onnx=ctx["onnx"], int8=quantized, fp16=ctx["fp16"],
                                                  sparse_weights=bool(sparse), layers=layers), indent=1) + "\n")
        report = dict(target=self.target.name, model=graph.name, files=sorted(os.path.relpath(p, outdir) for p in written),
                      tensorrt=dict(int8=quantized, float_precision=float_precision, sparse_layers=sparse,
                                    float_layers=float_layers, activations_made_symmetric=changes),
                      sparsity=graph.meta.get("sparsity", {}))
        write("report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
        return written


def _compute_nodes(model) -> set:
    return {n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")}
