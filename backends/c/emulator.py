"""Build a directory of generated C for a Cortex-M target and run it in QEMU.

The target file's `toolchain` (e.g. "arm-none-eabi-") and `cflags` say how to compile, its
`[emulator]` table which QEMU board runs the code and where that board has memory (see
backends/c/targets/cortex-m7.toml). Three templates (codegen_templates/c/emulator/) make a bare
metal program around the model: a vector table and reset handler, a linker script for the board's
memory map, and a harness whose file and console I/O go through semihosting (newlib's rdimon).

The `[emulator]` keys: machine (QEMU -M), cpu (QEMU -cpu, optional), qemu (the executable, default
qemu-system-arm), code_origin/code_length and ram_origin/ram_length (where the board has memory:
code and constants, then .data, .bss, heap and stack), vectors_origin (optional: where the vector
table must sit when code lives elsewhere), timer ("cmsdk" at timer_base, or "systick"),
insns_per_tick, trap_unaligned (fault on unaligned accesses, to stand in for an Armv6-M core).

One run gives the outputs and the figures a firmware engineer asks for:
  insns  instructions of one invoke: under `-icount shift=0` QEMU retires one instruction per
         nanosecond of virtual time, so the board's timer ticks times `insns_per_tick`;
  flash  .text + .rodata + .data of the model's own objects;
  ram    .data + .bss of the model's own objects (arena, inputs, outputs) plus the stack one
         invoke used (painted before, scanned after).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from edgecc.ir.errors import EdgeccError

from .backend import TEMPLATES
from .names import c_identifier

MODEL_CFLAGS = ["-std=c99", "-O2", "-ffunction-sections", "-fdata-sections"]
HARNESS_CFLAGS = ["-std=gnu99", "-O2", "-Wall", "-Wextra"]  # the harness calls sbrk, a POSIX-ish newlib function
EXIT_FAULT = 96  # startup.c.j2: a fault or NMI ends the run with this status
EXIT_MEANING = {65: "could not read an input file", 67: "invoke returned an error",
                68: "could not write an output file", EXIT_FAULT: "the core faulted (HardFault, bad access)"}
TIMEOUT_S = 900
# sections that are neither flash nor RAM on the device: debug info, attributes, symbol tables
NOT_LOADED = (".comment", ".ARM.attributes", ".debug", ".note", ".group", ".rel", ".symtab", ".strtab",
              ".shstrtab", ".stab")


@dataclass
class EmulatorRun:
    """What one emulated invoke gave."""

    outputs: list
    insns: int
    ticks: int
    flash: int  # bytes: .text + .rodata + .data of the model's objects
    static_ram: int  # bytes: .data + .bss of the model's objects
    stack: int  # bytes of stack one invoke used
    target: str = ""
    sections: dict = field(default_factory=dict)  # section name -> bytes, summed over the model's objects

    @property
    def ram(self) -> int:
        return self.static_ram + self.stack


def _target(target):
    from edgecc.backends.registry import get_target
    return get_target(target) if isinstance(target, str) else target


def tool(target, name: str) -> str:
    """The cross tool `name` ("gcc", "size") of the target's toolchain."""
    return _target(target).toolchain + name


def missing(target) -> str | None:
    """Why `target`'s code cannot run here (no emulator declared, a tool not installed), or None."""
    t = _target(target)
    emu = t.emulator
    if not emu:
        return f"target '{t.name}' declares no emulator"
    for exe in (tool(t, "gcc"), tool(t, "size"), emu.get("qemu", "qemu-system-arm")):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (Debian: apt install gcc-arm-none-eabi libnewlib-arm-none-eabi " \
                   f"qemu-system-arm)"
    return None


def _render(name: str, **ctx) -> str:
    env = Environment(loader=FileSystemLoader(os.path.normpath(TEMPLATES)), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("emulator/" + name).render(**ctx)


def board_context(target) -> dict:
    """Template variables for the board: memory map, timer, what the reset handler must enable."""
    t = _target(target)
    e = t.emulator
    vectors = e.get("vectors_origin")
    return dict(machine=e["machine"], vectors_origin=None if vectors is None else int(vectors),
                code_origin=int(e["code_origin"]), code_length=int(e["code_length"]),
                ram_origin=int(e["ram_origin"]), ram_length=int(e["ram_length"]),
                timer=e.get("timer", "systick"), timer_base=int(e.get("timer_base", 0)),
                fpu=t.isa.get("fpu", "none") != "none", trap_unaligned=bool(e.get("trap_unaligned", False)))


def _compile(cc: str, flags: list, src: str, obj: str) -> None:
    p = subprocess.run([cc, *flags, "-c", src, "-o", obj], capture_output=True, text=True)
    if p.returncode:
        raise EdgeccError(f"{cc} rejected {os.path.basename(src)}: {p.stderr.strip()[-2000:]}")


def section_sizes(target, objects: list) -> dict:
    """Bytes per section name, summed over `objects` (`size -A`)."""
    out: dict = {}
    for o in objects:
        p = subprocess.run([tool(target, "size"), "-A", o], capture_output=True, text=True, check=True)
        for line in p.stdout.splitlines()[2:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit() and parts[0] != "Total":
                out[parts[0]] = out.get(parts[0], 0) + int(parts[1])
    return out


def flash_and_ram(sections: dict) -> tuple:
    """(flash, static RAM): code, constants and initial values are flash; .data and .bss are RAM."""
    flash = ram = 0
    for name, n in sections.items():
        if name.startswith(NOT_LOADED) or n == 0:
            continue
        if name.startswith((".text", ".rodata")):
            flash += n
        elif name.startswith(".data"):
            flash += n  # initial values are stored in flash and copied at boot
            ram += n
        else:  # .bss, COMMON and any named arena section
            ram += n
    return flash, ram


def build(srcdir: str, workdir: str, target, n_inputs: int, n_outputs: int, name: str = "model",
          cflags=None, progress=None) -> tuple:
    """Cross-compile the generated sources, the startup code and the harness; link for the board.
    Returns (elf path, the model's object files). `progress(label, done, total)` hears of each file."""
    t = _target(target)
    cc = tool(t, "gcc")
    api = c_identifier(name).lower()
    board = board_context(t)
    cpu = list(t.cflags)
    for fname, tmpl, ctx in (("startup.c", "startup.c.j2", board), ("link.ld", "link.ld.j2", board),
                             ("main.c", "main.c.j2", dict(api=api, API=api.upper(), n_inputs=n_inputs,
                                                          n_outputs=n_outputs, **board))):
        with open(os.path.join(workdir, fname), "w", newline="\n") as f:
            f.write(_render(tmpl, **ctx))
    srcs = sorted(glob.glob(os.path.join(srcdir, "**", "*.c"), recursive=True))
    if not srcs:
        raise EdgeccError(f"{srcdir}: no C sources to build")
    model_objs = []
    steps = len(srcs) + 3  # the model's files, startup.c and main.c, the link
    for i, src in enumerate(srcs):
        if progress is not None:
            progress(f"building for {t.name}", i, steps)
        obj = os.path.join(workdir, f"model{i}_{os.path.basename(src)}.o")
        _compile(cc, cpu + MODEL_CFLAGS + list(cflags or []) + [f"-I{srcdir}"], src, obj)
        model_objs.append(obj)
    harness_objs = []
    for stem in ("startup", "main"):
        obj = os.path.join(workdir, stem + ".o")
        _compile(cc, cpu + HARNESS_CFLAGS + [f"-I{srcdir}"], os.path.join(workdir, stem + ".c"), obj)
        harness_objs.append(obj)
    # -nostartfiles: startup.c is the whole boot path (no crt0, see its comment); newlib's rdimon
    # gives stdio, files and exit over semihosting
    elf = os.path.join(workdir, "model.elf")
    cmd = [cc, *cpu, "--specs=rdimon.specs", "-nostartfiles", "-T", os.path.join(workdir, "link.ld"),
           "-Wl,--gc-sections", *harness_objs, *model_objs, "-o", elf,
           "-Wl,--start-group", "-lc", "-lrdimon", "-lm", "-lgcc", "-Wl,--end-group"]
    if progress is not None:
        progress(f"building for {t.name}", steps - 1, steps)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise EdgeccError(f"linking for {t.name} failed: {p.stderr.strip()[-2000:]}")
    if progress is not None:
        progress(f"building for {t.name}", steps, steps)
    return elf, model_objs


def qemu_command(target, elf: str) -> list:
    e = _target(target).emulator
    cmd = [e.get("qemu", "qemu-system-arm"), "-M", e["machine"]]
    if e.get("cpu"):
        cmd += ["-cpu", e["cpu"]]
    return cmd + ["-nographic", "-monitor", "none", "-serial", "none", "-semihosting-config",
                  "enable=on,target=native", "-icount", "shift=0", "-kernel", elf]


def run(elf: str, workdir: str, target, inputs: list, output_types: list, timeout: float = TIMEOUT_S) -> tuple:
    """Run a built program once in QEMU (working folder `workdir`, where the harness finds in<i>.bin).
    Returns (outputs, timer ticks, stack bytes)."""
    for i, a in enumerate(inputs):
        np.ascontiguousarray(a).tofile(os.path.join(workdir, f"in{i}.bin"))
    try:
        p = subprocess.run(qemu_command(target, elf), capture_output=True, text=True, timeout=timeout, cwd=workdir)
    except subprocess.TimeoutExpired as e:
        raise EdgeccError(f"the emulated run did not finish within {timeout:.0f} s") from e
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("EDGECC ")), None)
    if p.returncode or line is None:
        why = EXIT_MEANING.get(p.returncode, "no figures printed")
        raise EdgeccError(f"the emulated run failed (exit {p.returncode}: {why}): "
                          f"{(p.stderr or p.stdout).strip()[-1000:]}")
    figures = dict(kv.split("=") for kv in line.split()[1:])
    outs = []
    for i, (dt, shape) in enumerate(output_types):
        outs.append(np.fromfile(os.path.join(workdir, f"out{i}.bin"), dtype=dt).reshape(shape))
    return outs, int(figures["ticks"]), int(figures["stack"])


def build_and_run(srcdir: str, graph, inputs: list, target="cortex-m7", name: str = "model",
                  cflags=None, progress=None) -> EmulatorRun:
    """Cross-compile srcdir (generated from `graph`) for `target`, run it in the target's emulator on
    `inputs`; the outputs and the figures. `progress(label, done, total)` hears of the build and the run."""
    t = _target(target)
    why = missing(t)
    if why:
        raise EdgeccError(f"cannot run {t.name} code here: {why}")
    work = tempfile.mkdtemp(prefix="edgecc-emu-")
    try:
        elf, objs = build(srcdir, work, t, len(graph.inputs), len(graph.outputs), name, cflags, progress)
        sections = section_sizes(t, objs)
        flash, static_ram = flash_and_ram(sections)
        types = [(v.type.np_dtype, v.type.shape) for v in graph.outputs]
        if progress is not None:
            progress(f"running in {t.emulator['machine']}", 0, 1)
        outs, ticks, stack = run(elf, work, t, inputs, types)
        if progress is not None:
            progress(f"running in {t.emulator['machine']}", 1, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    insns = int(round(ticks * float(t.emulator.get("insns_per_tick", 1))))
    return EmulatorRun(outputs=outs, insns=insns, ticks=ticks, flash=flash, static_ram=static_ram, stack=stack,
                       target=t.name, sections={k: v for k, v in sorted(sections.items())
                                                if not k.startswith(NOT_LOADED) and v})
