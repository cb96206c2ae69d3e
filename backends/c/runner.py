"""Build a directory of generated C with the system C compiler and run it on given inputs.

Used by `edgecc verify` and by the tests: a small harness (codegen_templates/c/harness.c.j2)
reads each input from a binary file into NAME_input(i), invokes, and writes each output.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from edgecc.ir.errors import EdgeccError

from .backend import TEMPLATES
from .names import c_identifier

STRICT_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
SANITIZE_CFLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def build(srcdir: str, workdir: str, n_inputs: int, n_outputs: int, name: str = "model", cc: str = "gcc",
          cflags=None) -> str:
    """Compile the generated sources plus the harness into an executable; return its path."""
    api = c_identifier(name).lower()
    env = Environment(loader=FileSystemLoader(os.path.normpath(TEMPLATES)), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    harness = os.path.join(workdir, "harness.c")
    with open(harness, "w") as f:
        f.write(env.get_template("harness.c.j2").render(api=api, API=api.upper(), n_inputs=n_inputs,
                                                             n_outputs=n_outputs))
    exe = os.path.join(workdir, "model_run")
    srcs = sorted(glob.glob(os.path.join(srcdir, "**", "*.c"), recursive=True))
    cmd = [cc, *(cflags if cflags is not None else STRICT_CFLAGS), f"-I{srcdir}", *srcs, harness, "-o", exe, "-lm"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise EdgeccError(f"the C compiler rejected the generated code: {p.stderr.strip()[-2000:]}")
    return exe


def run(exe: str, workdir: str, inputs: list, output_types: list) -> list:
    """Run a built model once. output_types: (numpy dtype, shape) per output."""
    for i, a in enumerate(inputs):
        np.ascontiguousarray(a).tofile(os.path.join(workdir, f"in{i}.bin"))
    args = [exe, workdir]
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if p.returncode:
        raise EdgeccError(f"the generated code failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-2000:]}")
    outs = []
    for i, (dt, shape) in enumerate(output_types):
        outs.append(np.fromfile(os.path.join(workdir, f"out{i}.bin"), dtype=dt).reshape(shape))
    return outs


def build_and_run(srcdir: str, graph, inputs: list, name: str = "model", cc: str = "gcc", cflags=None) -> list:
    """Compile srcdir (generated from `graph`) and run it on `inputs`; the outputs as numpy arrays."""
    work = tempfile.mkdtemp(prefix="edgecc-run-")
    try:
        exe = build(srcdir, work, len(graph.inputs), len(graph.outputs), name, cc, cflags)
        types = [(v.type.np_dtype, v.type.shape) for v in graph.outputs]
        return run(exe, work, inputs, types)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def have_cc(cc: str = "gcc") -> bool:
    return shutil.which(cc) is not None
