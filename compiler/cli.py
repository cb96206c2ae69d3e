"""The `edgecc` command line: a thin layer over compiler/driver.py.

    edgecc MODEL [--target T] [-o OUT] [--name NAME] [--emit ir|c|report] [--input-shape NAME=1,3,96,96] [--debug]
           [--sram SIZE] [--flash SIZE] [--optimize balanced|speed|size]
    edgecc MODEL --quantize int8 --calibration DATA.npz [--calibration-method minmax|percentile|entropy]
           [--io float|int8] [--keep-float NODE,...] [--weights int8|int4|auto] [--emit c|ir|onnx|report] ...
    edgecc verify MODEL [--target host] [--data golden.npz] [--input-shape ...] [--name NAME] [--optimize ...]
           [--debug]
    edgecc compare MODEL --targets T1,T2,... [-o compare.html] [--input-shape ...] [--optimize ...]
    edgecc targets

A user error prints one line, `edgecc: error: FILE: node 'NAME' (OpType): why`, on stderr and
exits with status 2 (so do usage errors); --debug shows the traceback instead.
"""
from __future__ import annotations

import argparse
import sys

from edgecc.backends.base import Backend
from edgecc.ir.errors import EdgeccError

DEFAULT_C_OUT = "out"


def input_shape(text: str) -> tuple[str, list]:
    """'name=1,3,96,96' -> ('name', [1, 3, 96, 96]); the name may itself hold '='."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = [int(d) for d in dims.split(",")] if dims.strip() else []
    except ValueError:
        shape = None
    if not sep or not name or shape is None or any(d < 0 for d in shape):
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... with whole numbers, got '{text}'")
    return name, shape


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="an .onnx model or textual IR (.edgeir)")
    p.add_argument("--target", default="host", help="target name (see `edgecc targets`; default: host)")
    p.add_argument("--name", default="model", help="prefix of the generated C API (default: model)")
    p.add_argument("--input-shape", action="append", type=input_shape, default=[], metavar="NAME=D1,D2,...",
                   help="static shape of an input (repeatable); a dynamic batch dimension is 1 otherwise")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    p.add_argument("--optimize", choices=Backend.OPTIMIZE, default="balanced",
                   help="code size against speed (default: balanced: layers with few MACs and weights, as the "
                        "target file says, share one compact kernel; speed: every layer its own kernel; size: "
                        "every layer that can, the compact kernel)")
    p.add_argument("--partition", choices=("cost", "single-cut", "none"), default=None,
                   help="accelerator targets: which supported layers the accelerator runs (default: cost: each run "
                        "of supported layers where the cost model says the round trip pays; single-cut: those "
                        "before the first unsupported layer, as the Edge TPU compiler does; none: all on the CPU)")
    p.add_argument("--sparsity", choices=("on", "off"), default="on",
                   help="zero weights: output channels zero end to end are removed (default on; off, to compare)")
    _limit_options(p)


def _limit_options(p: argparse.ArgumentParser) -> None:
    from .frontend.limits import Limits

    d = Limits()
    g = p.add_argument_group("how large a model edgecc reads (refused before memory is allocated for it)")
    g.add_argument("--max-model-bytes", type=_size, metavar="SIZE",
                   help=f"the model file, and its weights together (default: {d.max_model_bytes // 1024 ** 3}G)")
    g.add_argument("--max-tensor-bytes", type=_size, metavar="SIZE",
                   help=f"any one tensor, as its shape declares it (default: {d.max_tensor_bytes // 1024 ** 3}G)")
    g.add_argument("--max-nodes", type=int, metavar="N", help=f"nodes in the graph (default: {d.max_nodes:,})")


def limits_of(args):
    """The Limits the flags ask for (the defaults where none is given)."""
    from .frontend.limits import Limits

    given = {"max_model_bytes": args.max_model_bytes, "max_tensor_bytes": args.max_tensor_bytes,
             "max_nodes": args.max_nodes}
    return Limits(**{k: v for k, v in given.items() if v is not None})


def compile_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgecc", description="Compile an ONNX model to C for a microcontroller.",
                                epilog="also: `edgecc targets`, `edgecc verify MODEL --data golden.npz`, "
                                       "`edgecc compare MODEL --targets T1,T2,...`")
    _common(p)
    p.add_argument("-o", "--output", metavar="OUT",
                   help=f"output directory for --emit c (default: {DEFAULT_C_OUT}); file for --emit ir (default: stdout)")
    p.add_argument("--emit", choices=("ir", "c", "onnx", "report"), default="c",
                   help="what to write (default: c); onnx (QDQ) goes with --quantize; report: with --quantize "
                        "the quantization report, else the C and report.html (memory per layer, plotted)")
    _quantization_options(p)
    _memory_options(p)
    return p


def _size(text: str) -> int:
    from .memory.budget import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _memory_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("memory budget (bytes; K = 1024, M = 1024 K)")
    g.add_argument("--sram", type=_size, metavar="SIZE",
                   help="RAM the model may use, arena and stack (default: the target's); layers are computed in "
                        "strips until it fits, or the compile is refused with the least that works")
    g.add_argument("--flash", type=_size, metavar="SIZE",
                   help="flash the model may use: its weights alone must fit, and --weights auto fits the "
                        "whole build, weights and code (default: the target's)")


def _quantization_options(p: argparse.ArgumentParser) -> None:
    from .quantization import DEFAULT_METHOD, IO_KINDS, METHODS, WEIGHTS

    g = p.add_argument_group("post-training quantization")
    g.add_argument("--quantize", choices=("int8",), help="quantize a float model to int8 (needs --calibration)")
    g.add_argument("--calibration", metavar="DATA.npz",
                   help="calibration samples: one array per model input, named after it, shape [N, *input_shape] "
                        "(or [N, *input_shape[1:]] for an input of batch 1)")
    g.add_argument("--calibration-method", choices=METHODS,
                   help=f"how a tensor's range is chosen from the samples (default: {DEFAULT_METHOD})")
    g.add_argument("--io", choices=IO_KINDS, help="interface of the quantized model (default: float)")
    g.add_argument("--keep-float", action="append", default=[], metavar="NODE,...",
                   help="layers to leave in float (repeatable; names as in --emit report)")
    g.add_argument("--weights", choices=WEIGHTS,
                   help="conv and fully connected weights: int8 (default), int4 (4-bit, steps and codes chosen on "
                        "the calibration data) or auto (4-bit or int8 per layer, to fit --flash with the least loss)")


def quantization_of(args):
    """The Quantization the flags ask for, or None; flags that only make sense with --quantize are
    user errors without it."""
    from .quantization import DEFAULT_METHOD, Quantization
    from .progress import for_stderr

    given = [f for f, v in (("--calibration", args.calibration), ("--calibration-method", args.calibration_method),
                            ("--io", args.io), ("--keep-float", args.keep_float), ("--weights", args.weights)) if v]
    if args.quantize is None:
        if given:
            raise EdgeccError(f"{given[0]} goes with --quantize int8")
        return None
    if not args.calibration:
        raise EdgeccError("--quantize int8 needs calibration samples: --calibration DATA.npz")
    keep = tuple(n.strip() for item in args.keep_float for n in item.split(",") if n.strip())
    return Quantization(args.calibration, method=args.calibration_method or DEFAULT_METHOD, io=args.io or "float",
                        keep_float=keep, weights=args.weights or "int8", progress=for_stderr())


def verify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgecc verify",
                                description="Compile a model, run the C on the host and compare with onnxruntime.")
    _common(p)
    p.add_argument("--data", help=".npz with the inputs (default: seeded random inputs)")
    return p


def shapes_of(args) -> dict | None:
    return dict(args.input_shape) or None


def run_compile(args) -> int:
    from .driver import compile as compile_model
    from .progress import for_stderr

    quantize = quantization_of(args)
    # these may go without -o (to stdout, or nowhere); --emit report without --quantize writes C like --emit c
    without_dir = ("ir", "onnx", "report") if quantize is not None else ("ir", "onnx")
    out = args.output if args.output or args.emit in without_dir else DEFAULT_C_OUT
    art = compile_model(args.model, target=args.target, outdir=out, name=args.name, emit=args.emit,
                        input_shapes=shapes_of(args), quantize=quantize, sram=args.sram, flash=args.flash,
                        optimize=args.optimize, partition=args.partition, sparsity=args.sparsity,
                        progress=for_stderr(), limits=limits_of(args))
    if args.emit == "ir" and out is None:
        sys.stdout.write(art.ir_text)
    if args.emit == "report" and out is None:
        sys.stdout.write(art.report_text)
    return 0


def run_verify(args) -> int:
    from .progress import for_stderr
    from .verify import verify

    ok = verify(args.model, target=args.target, data=args.data, input_shapes=shapes_of(args), name=args.name,
                optimize=args.optimize, partition=args.partition, sparsity=args.sparsity, progress=for_stderr(),
                limits=limits_of(args))
    return 0 if ok else 1


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgecc compare",
                                description="Compile a model for several targets; print their estimated latency, "
                                            "RAM, flash, energy per inference and share of MACs on an accelerator.")
    _common(p)
    p.set_defaults(target=None)
    p.add_argument("--targets", required=True, metavar="T1,T2,...", help="the targets, comma-separated")
    p.add_argument("-o", "--output", default="compare.html", metavar="FILE.html",
                   help="the page that draws the table (default: compare.html)")
    return p


def run_compare(args) -> int:
    from .compare import compare, format_table, render_html
    from .output import write_file_atomic
    from .progress import for_stderr

    if args.target is not None:
        raise EdgeccError("compare takes its targets as --targets T1,T2,... (not --target)")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    rows = compare(args.model, targets, progress=for_stderr(), name=args.name, input_shapes=shapes_of(args),
                   optimize=args.optimize, partition=args.partition, sparsity=args.sparsity, limits=limits_of(args))
    sys.stdout.write(format_table(rows))
    write_file_atomic(args.output, render_html(args.model, rows))
    return 0


def run_targets(argv: list) -> int:
    argparse.ArgumentParser(prog="edgecc targets", description="List the targets edgecc knows.").parse_args(argv)
    try:
        from edgecc.backends.registry import list_targets
    except ImportError:
        return 0
    rows = list_targets()
    width = max((len(n) for n, _ in rows), default=0)
    for name, description in rows:
        print(f"{name.ljust(width)}  {description}".rstrip())
    return 0


def _run(parser: argparse.ArgumentParser, action, argv: list) -> int:
    args = parser.parse_args(argv)
    try:
        return action(args)
    except EdgeccError as e:
        if args.debug:
            raise
        print(f"edgecc: error: {e}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "targets":
        return run_targets(argv[1:])
    if argv and argv[0] == "verify":
        return _run(verify_parser(), run_verify, argv[1:])
    if argv and argv[0] == "compare":
        return _run(compare_parser(), run_compare, argv[1:])
    return _run(compile_parser(), run_compile, argv)


if __name__ == "__main__":
    sys.exit(main())
