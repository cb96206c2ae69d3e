"""The `edgecc` command line: a thin layer over compiler/driver.py.

    edgecc MODEL [--target T] [-o OUT] [--name NAME] [--emit ir|c] [--input-shape NAME=1,3,96,96] [--debug]
    edgecc verify MODEL [--target host] [--data golden.npz] [--input-shape ...] [--name NAME] [--debug]
    edgecc targets

A user error prints one line, `edgecc: error: FILE: node 'NAME' (OpType): why`, on stderr and
exits with status 2 (so do usage errors); --debug shows the traceback instead.
"""
from __future__ import annotations

import argparse
import sys

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


def compile_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgecc", description="Compile an ONNX model to C for a microcontroller.",
                                epilog="also: `edgecc targets`, `edgecc verify MODEL --data golden.npz`")
    _common(p)
    p.add_argument("-o", "--output", metavar="OUT",
                   help=f"output directory for --emit c (default: {DEFAULT_C_OUT}); file for --emit ir (default: stdout)")
    p.add_argument("--emit", choices=("ir", "c"), default="c", help="what to write (default: c)")
    return p


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

    out = args.output if args.output or args.emit == "ir" else DEFAULT_C_OUT
    art = compile_model(args.model, target=args.target, outdir=out, name=args.name, emit=args.emit,
                        input_shapes=shapes_of(args))
    if args.emit == "ir" and out is None:
        sys.stdout.write(art.ir_text)
    return 0


def run_verify(args) -> int:
    from .verify import verify

    ok = verify(args.model, target=args.target, data=args.data, input_shapes=shapes_of(args), name=args.name)
    return 0 if ok else 1


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
    return _run(compile_parser(), run_compile, argv)


if __name__ == "__main__":
    sys.exit(main())
