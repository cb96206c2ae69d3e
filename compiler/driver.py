"""The Python API vendors embed: load a model, compile it to textual IR or to C.

    graph = load("kws.onnx")                                     # or a .edgeir file
    art = compile("kws.onnx", target="host", outdir="out/kws", emit="c")
    art.graph, art.paths                                         # the compiled graph, files written
    art = compile("net.onnx", target="cortex-m7", outdir="out/net", emit="c",
                  quantize=Quantization("calib.npz"))           # post-training int8 (see below)

With `quantize` (compiler/quantization), the target's pipeline gets the calibrate, quantize_int8 and
quantization_report passes after its float clean-up (compiler/pipeline.py `quantizing`); emit="ir",
"onnx" (QDQ ONNX, compiler/onnx_export) and "report" (the quantization report as text) stop there,
emit="c" runs the rest of the pipeline. art.quantization holds the report (also in report.json).

User errors raise EdgeccError (one line naming the file, node and op). Outputs are written
atomically: a failure leaves nothing at the output path.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Optional, Union

from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import Graph

from .output import atomic_directory, write_file_atomic

EMITS = ("ir", "c", "onnx", "report")


@dataclass
class Artifacts:
    """What compile produced: the graph (lowered for the target when emitting C), the files
    written (absolute paths, none when the IR only went to `ir_text`), and the IR text for emit="ir"."""

    graph: Graph
    paths: list = field(default_factory=list)
    ir_text: Optional[str] = None
    quantization: Optional[dict] = None  # the quantization report, when compile quantized
    report_text: Optional[str] = None  # emit="report": the report as text


def load(path, input_shapes: Optional[dict] = None, limits=None) -> Graph:
    """An IR graph from an .onnx model (through the frontend) or an .edgeir text file. `limits`: how large
    an ONNX model may be, a compiler.frontend.limits.Limits (default: Limits(), far above any
    microcontroller model); a larger one is refused before memory is allocated for it."""
    file = str(path)
    if file.endswith(".edgeir"):
        from edgecc.ir import parse

        if input_shapes:
            raise EdgeccError("--input-shape applies to ONNX models; textual IR has static shapes", file=file)
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise EdgeccError("no such file", file=file) from None
        except (OSError, UnicodeDecodeError) as e:
            raise EdgeccError(f"cannot read the file: {getattr(e, 'strerror', None) or e}", file=file) from None
        return parse(text, file)
    from .frontend import load_onnx

    return load_onnx(file, input_shapes, limits)


def _quantize(graph: Graph, target: str, quantize, optimize: str = "balanced", budgets=None) -> tuple:
    """Run the target's pipeline up to the quantization report; (graph, the passes still to run). The
    backend is the one that will emit (`optimize`), and `budgets` reach the passes: --weights auto fits
    the flash budget with them."""
    from edgecc.backends.registry import backend_for, get_target
    from edgecc.compiler.pipeline import lower, quantizing

    t = get_target(target)
    backend = backend_for(t, optimize)
    head, rest = quantizing(backend.pipeline())
    graph = lower(graph, t, options=dict(budgets or {}, **quantize.pass_options(graph)), backend=backend,
                  passes=head)
    return graph, rest


def _write_or_keep(outdir: Optional[str], name: str, suffix: str, data) -> list:
    """Write data to outdir (a file path, or NAME.suffix inside an existing directory) when given."""
    if outdir is None:
        return []
    dest = os.path.join(outdir, f"{name}{suffix}") if os.path.isdir(outdir) else outdir
    return [write_file_atomic(dest, data)]


def compile(model: Union[str, os.PathLike, Graph], target: str = "host", outdir: Optional[str] = None,
            name: str = "model", emit: str = "ir", input_shapes: Optional[dict] = None,
            quantize=None, sram: Optional[int] = None, flash: Optional[int] = None,
            optimize: str = "balanced", partition: Optional[str] = None, sparsity: str = "on",
            progress=None, limits=None) -> Artifacts:
    """Compile `model` (a path or a Graph) for `target`.

    emit="ir": the imported graph as textual IR, written to `outdir` when given (a file path, or
    NAME.edgeir inside an existing directory). emit="c": the target's pipeline, then its backend
    writes C sources into the directory `outdir`. `quantize`: a compiler.quantization.Quantization
    (post-training int8); emit="onnx" (needs `outdir`, a file) goes with it, and so does emit="report"
    for the quantization report; without `quantize`, emit="report" is emit="c" plus report.html, the
    report drawn (per layer: MACs, time, energy, memory; compiler/report_html.py). `sram`, `flash`:
    budgets in bytes (default: the target's); a model whose plan cannot fit is refused with the least
    that works (EdgeccError).
    `optimize`: "balanced" (default), "speed" or "size": how the backend trades code size against speed
    (for the C backend: which small layers share one compact kernel, backends/c/kernels/compact.py).
    `partition`: accelerator targets: "cost" (default), "single-cut" or "none" (compiler/passes/partition.py).
    `sparsity`: "on" (default) or "off": whether output channels that are zero end to end are removed
    (compiler/passes/remove_zero_channels.py). `progress`: a callable(label, done, total) the long passes
    report to (the tiling search; compiler/progress.py), or None. `limits`: see load.
    """
    if emit not in EMITS:
        raise EdgeccError(f"unknown output kind '{emit}' (known: {', '.join(EMITS)})")
    memory_report = emit == "report" and quantize is None
    if emit == "onnx" and outdir is None:
        raise EdgeccError("emitting ONNX needs an output file (-o MODEL.onnx)")
    if emit == "c" or memory_report:
        if outdir is None:
            raise EdgeccError("emitting C needs an output directory")
        from edgecc.backends.registry import backend_for

        backend = backend_for(target, optimize)  # an unknown target or mode fails before the model is read
    # the pipeline changes a graph in place: a caller's own graph is left as it was
    graph = copy.deepcopy(model) if isinstance(model, Graph) else load(model, input_shapes, limits)
    rest = None
    if quantize is not None:
        graph, rest = _quantize(graph, target, quantize, optimize,
                                {k: v for k, v in (("sram", sram), ("flash", flash)) if v is not None})
    report = graph.meta.get("quantization")
    if emit == "report" and not memory_report:
        from .quantization.report import format_report

        text = format_report(report)
        return Artifacts(graph, _write_or_keep(outdir, name, ".txt", text), quantization=report, report_text=text)
    if emit == "onnx":
        from .onnx_export import qdq_model_bytes

        return Artifacts(graph, _write_or_keep(outdir, name, ".onnx", qdq_model_bytes(graph)), quantization=report)
    if emit == "ir":
        from edgecc.ir import print_graph

        text = print_graph(graph)
        if outdir is None:
            return Artifacts(graph, [], text)
        dest = os.path.join(outdir, f"{name}.edgeir") if os.path.isdir(outdir) else outdir
        return Artifacts(graph, [write_file_atomic(dest, text)], text)
    from edgecc.backends.registry import backend_for
    from edgecc.compiler.pipeline import lower

    if sparsity not in ("on", "off"):
        raise EdgeccError(f"unknown sparsity mode '{sparsity}' (on, off)")
    budgets = {k: v for k, v in (("sram", sram), ("flash", flash), ("partition", partition), ("sparsity", sparsity))
               if v is not None}
    graph = lower(graph, target, options=dict(budgets, file="" if isinstance(model, Graph) else str(model),
                                              progress=progress),
                  backend=backend, passes=rest)
    dest = os.path.abspath(outdir)
    with atomic_directory(dest) as tmp:
        # a fresh instance: kernels are chosen again for the graph as lowered
        written = backend_for(target, optimize).emit(graph, tmp, name=name) or []
        if memory_report:
            from .report_html import write_html

            written.append(write_html(tmp))
    paths = sorted(os.path.join(dest, os.path.relpath(os.path.join(tmp, p), tmp)) for p in written)
    return Artifacts(graph, paths, quantization=report)
