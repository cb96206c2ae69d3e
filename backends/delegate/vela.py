"""Arm's Vela (ethos-u-vela 5.2) on one delegate partition: its Ethos-U command stream, weights and estimates.

Vela reads a quantized TFLite model and writes an "optimised" TFLite model in which every run of
operators the NPU accepts has become one TFLite CUSTOM operator with custom code "ethos-u" (its custom
options the flexbuffer int8 1, TFLite Micro's CO_TYPE_ETHOSU), plus a summary CSV and a summary on
stdout. `compile_partition` runs it as a subprocess of this interpreter (`sys.executable -m ethosu.vela`:
a crash in Vela's C++ core, which a malformed model can cause, cannot take edgecc down) and reads:

  * the "ethos-u" operator's inputs, in order: 0 the command stream (a uint8 tensor with data),
    1 "read_only" (the weights, biases and look-up tables: Vela's "flash" tensor, with data),
    2 "scratch" (the arena: uint8, no data, its shape its size), 3 the fast scratch (for the Ethos-U55
    the same tensor as 2: the U55's memory modes Shared_Sram and Sram_Only have no separate cache),
    then the partition's input feature maps; its outputs: the output feature maps;
  * the model's "OfflineMemoryAllocation" metadata (int32: version 0, subgraph count, tensor count, then
    one byte offset per tensor, -1 for "allocated by the runtime"): the offset of each tensor Vela placed
    in the scratch area. In the default layout the command stream reads the inputs and writes the
    outputs through region 1 at these offsets (decoding NPU_SET_IFM_REGION/IFM_BASE0 of the first layer
    of the MLPerf Tiny models confirms it), so the caller must place each input at scratch + offset
    before invoking and read each output from scratch + offset after;
  * stdout's "CPU operators = N" and "NPU operators = N" lines, and the CSV's cycles_total,
    sram_memory_used and off_chip_flash_memory_used (KiB) columns.

The system configuration and memory mode are Arm's reference ones from the Vela configuration file
installed with Vela (Arm/vela.ini), and by default the ones Vela itself falls back to when given
none (architecture_features.py `_set_default_sys_config`/`_set_default_mem_mode`): for an Ethos-U55
"Ethos_U55_High_End_Embedded" (500 MHz NPU clock, SRAM on AXI0 at 8 bytes a cycle, off-chip flash on
AXI1 at an eighth of that) and "Shared_Sram" (weights stay in the read-only flash, the arena is in
SRAM shared with the Cortex-M software). We pass them explicitly, so Vela prints no "no system
configuration specified" warning and a change of Vela's defaults cannot change our figures silently.
Vela's own optimisation strategy default (Performance) is kept.

Running the result: the Ethos-U core driver (ethos-u-core-driver, `ethosu_driver.h`, as documented in
driver 1.99 (2026); the seven-argument form with user_arg dates from driver 0.16 (2022), where base_addr
was still `const uint64_t *`; the driver now writes the fast-memory address into base_addr[2]):

    int ethosu_invoke_v3(struct ethosu_driver *drv,
                         const void *custom_data_ptr,     // VelaPartition.command_stream
                         const int custom_data_size,      // its length in bytes (a multiple of 4)
                         uint64_t *const base_addr,       // one address per region, in `regions` order
                         const size_t *base_addr_size,    // each region's size in bytes
                         const int num_base_addr,         // len(regions), at most 8
                         void *user_arg);                 // handed to ethosu_inference_begin/_end
    // 0 on success; ethosu_invoke(drv, data, size, base_addr, base_addr_size, n) is the macro with
    // user_arg 0. drv comes from ethosu_init(&drv, NPU_BASE, NULL, 0, secure, privileged) once
    // (fast_memory NULL: the U55 has no separate fast scratch), or ethosu_reserve_driver().

`regions` lists exactly what TFLite Micro's ethos-u kernel (tensorflow/lite/micro/kernels/ethos_u/
ethosu.cc) passes: base_addr[i] is the address of the custom operator's input i + 1, then of its
outputs: [0] read_only, [1] scratch, [2] the fast scratch (= scratch on the U55), [3...] each input
feature map, then each output feature map. The command stream addresses memory as (region, offset)
pairs and the driver loads base_addr[i] into the NPU's BASEP i register, so region 0 is the weights,
region 1 the arena. Every base address and the command stream must be 16-byte aligned (the driver
refuses others; with a data cache, align to the 32-byte cache line too, since the driver cleans the
cache over each region before the run and invalidates it after). When the driver is built with
fast memory (ethosu_init's fast_memory), it overwrites base_addr[2] itself.
"""
from __future__ import annotations

import csv
import glob
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from edgecc.ir.errors import EdgeccError

PACKAGE = "ethos-u-vela"
CONFIG_FILE = "Arm/vela.ini"  # Vela's bundled configuration file, named as `vela --list-config-files` lists it
TIMEOUT_S = 900

# Vela's own fallbacks when none is given (ethosu/vela/architecture_features.py, Vela 5.2)
DEFAULT_CONFIGS = {
    "ethos-u55": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u65": ("Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
    "ethos-u85": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
}


class VelaError(EdgeccError):
    """Vela refused or failed on a partition; the message is one line with Vela's reason."""


def vela_version() -> str | None:
    """The installed ethos-u-vela's version ("5.2.0"), None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


@dataclass
class VelaRegion:
    """One entry of the driver's base-address array.

    index: the region number (the position in base_addr[]); points_at: "read_only", "scratch",
    "scratch_fast", "input:NAME" or "output:NAME" (NAME the tensor's name in the partition's TFLite);
    size: bytes (base_addr_size[index]); scratch_offset: for an input or output that Vela placed in
    the scratch area, its byte offset there (the command stream reads/writes it at scratch + offset,
    not through this region), else None."""

    index: int
    points_at: str
    size: int
    scratch_offset: int | None = None

    def __str__(self):
        return self.points_at


@dataclass
class VelaPartition:
    command_stream: bytes       # the "ethos-u" custom operator's input 0: the driver payload ("COP1" ...)
    read_only: bytes            # input 1: weights, biases, LUTs (Vela's flash tensor), region 0
    scratch_bytes: int          # input 2: the arena the driver needs, region 1
    scratch_fast_bytes: int     # input 3 when it is a tensor of its own; 0 when it is the scratch (U55)
    regions: list               # [VelaRegion]: base_addr[] in order (see the module docstring)
    npu_operators: int          # stdout "NPU operators = N"
    cpu_operators: int          # stdout "CPU operators = N" (a partition needs 0)
    cycles: int                 # the CSV's cycles_total: estimated NPU cycles at clock_hz
    sram_bytes: int             # the CSV's sram_memory_used ("Total SRAM used")
    offchip_flash_bytes: int    # the CSV's off_chip_flash_memory_used ("Total Off-chip Flash used")
    log: str                    # Vela's summary on stdout, from "Network summary" on
    accelerator: str = ""       # what it was compiled for, as passed
    system_config: str = ""
    memory_mode: str = ""
    clock_hz: float = 0.0       # the CSV's core_clock: the system configuration's NPU clock
    warnings: list = field(default_factory=list)  # Vela's "Warning" lines, one string each
    optimised: bytes = b""      # Vela's optimised TFLite (the ethos-u custom operator), for TFLite Micro users

    def region(self, points_at: str) -> VelaRegion | None:
        return next((r for r in self.regions if r.points_at == points_at), None)


def _defaults(accelerator: str) -> tuple[str, str]:
    family = accelerator.lower()[:9]
    if family not in DEFAULT_CONFIGS:
        raise VelaError(f"unknown Ethos-U accelerator {accelerator!r} (ethos-u55-32/64/128/256, ethos-u65-..., "
                        "ethos-u85-...)")
    return DEFAULT_CONFIGS[family]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(stdout: str, stderr: str, returncode: int) -> str:
    """Vela's own words for a failure, in one line: its error lines, then the exception it died of."""
    lines = []
    for line in (stdout + "\n" + stderr).splitlines():
        s = line.strip()
        if re.match(r"(Error|Failed|Reason|Compilation failed)\b", s) and s not in lines:
            lines.append(s)
    trace = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if trace and re.match(r"^[\w.]+(Error|Exception)\b", trace[-1]):  # "pkg.errors.CliOptionError: 'Error: ...'"
        message = trace[-1].split(":", 1)[1].strip() if ":" in trace[-1] else trace[-1]
        message = message.strip("'\"")
        message = re.sub(r"^Error:\s*", "", message)
        if message and message not in lines:
            lines.append(message)
    if returncode < 0:
        try:
            import signal
            name = signal.Signals(-returncode).name
        except (ValueError, AttributeError):
            name = f"signal {-returncode}"
        lines.append(f"Vela crashed ({name})")
    if not lines:
        lines.append(f"exit status {returncode}" + (f": {trace[-1].strip()}" if trace else ""))
    return _one_line("; ".join(ln.rstrip(".") for ln in lines))


def _summary_csv(outdir: str) -> dict:
    paths = glob.glob(os.path.join(outdir, "*_summary_*.csv"))
    if not paths:
        raise VelaError("Vela wrote no summary CSV")
    with open(paths[0], newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise VelaError(f"Vela's summary CSV {os.path.basename(paths[0])} has no data row")
    return dict(zip(rows[0], rows[1]))


def _count(stdout: str, what: str) -> int:
    m = re.search(rf"^{what} operators\s*=\s*(\d+)", stdout, re.M)
    if not m:
        raise VelaError(f"Vela's summary has no '{what} operators' line")
    return int(m.group(1))


def _buffer_bytes(model, buf: bytes, index: int) -> bytes:
    """The bytes of the model's buffer `index` (b"" for the empty buffer of a run-time tensor)."""
    b = model.Buffers(index)
    if b is None:
        return b""
    if b.Offset() > 1:  # data outside the flatbuffer (models over 2 GB)
        return bytes(buf[b.Offset():b.Offset() + b.Size()])
    return b.DataAsNumpy().tobytes() if b.DataLength() else b""


def _read_optimised(path: str) -> dict:
    """The ethos-u operator's tensors and the offline allocation offsets of Vela's optimised TFLite."""
    import numpy as np
    import tflite

    with open(path, "rb") as f:
        buf = f.read()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise VelaError(f"Vela's optimised model has {model.SubgraphsLength()} subgraphs (expected 1)")
    sg = model.Subgraphs(0)
    ethos = [i for i in range(sg.OperatorsLength())
             if (model.OperatorCodes(sg.Operators(i).OpcodeIndex()).CustomCode() or b"") == b"ethos-u"]
    if len(ethos) != 1:
        others = sorted({_op_name(model, sg.Operators(i)) for i in range(sg.OperatorsLength()) if i not in ethos})
        raise VelaError(f"Vela made {len(ethos)} NPU command streams of the partition (expected 1); "
                        f"left on the CPU: {', '.join(others) or 'nothing'}")
    op = sg.Operators(ethos[0])
    offsets = {}
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        if md.Name() == b"OfflineMemoryAllocation":
            words = np.frombuffer(_buffer_bytes(model, buf, md.Buffer()), dtype="<i4")
            if len(words) >= 3:
                offsets = {t: int(o) for t, o in enumerate(words[3:3 + sg.TensorsLength()]) if o >= 0}

    def tensor(j):
        t = sg.Tensors(j)
        shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
        size = int(np.prod(shape)) if shape else 1
        return dict(index=j, name=(t.Name() or b"").decode(), shape=shape, type=t.Type(), size=size,
                    data=_buffer_bytes(model, buf, t.Buffer()))

    inputs = [tensor(int(j)) for j in op.InputsAsNumpy()]
    outputs = [tensor(int(j)) for j in op.OutputsAsNumpy()]
    if len(inputs) < 4:
        raise VelaError(f"the ethos-u operator has {len(inputs)} inputs (expected command stream, read_only, "
                        "scratch, scratch_fast and the feature maps)")
    return dict(inputs=inputs, outputs=outputs, offsets=offsets)


def _op_name(model, op) -> str:
    import tflite

    code = model.OperatorCodes(op.OpcodeIndex())
    if code.CustomCode():
        return code.CustomCode().decode()
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(builtin, str(builtin))


def compile_partition(tflite: bytes, accelerator: str = "ethos-u55-128", system_config: str | None = None,
                      memory_mode: str | None = None, workdir: str | None = None) -> VelaPartition:
    """Compile one partition (a standalone quantized TFLite model, as bytes) with Vela.

    accelerator: Vela's --accelerator-config (ethos-u55-128 for the Ethos-U55-128). system_config /
    memory_mode: sections of Vela's bundled Arm/vela.ini; None = Vela's own defaults for the
    accelerator's family (Ethos_U55_High_End_Embedded and Shared_Sram for an Ethos-U55). workdir:
    where the input model, the optimised model and the summary CSV are written (kept); None = a
    temporary directory, removed. Raises VelaError (one line, Vela's reason) when Vela is missing or
    fails, or when it could not make the whole partition one command stream.
    """
    if vela_version() is None:
        raise VelaError(f"Vela is not installed (pip install {PACKAGE})")
    default_sc, default_mm = _defaults(accelerator)
    system_config = system_config or default_sc
    memory_mode = memory_mode or default_mm
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="edgecc-vela-") as tmp:
            return compile_partition(tflite, accelerator, system_config, memory_mode, tmp)

    os.makedirs(workdir, exist_ok=True)
    source = os.path.join(workdir, "partition.tflite")
    outdir = os.path.join(workdir, "vela")
    os.makedirs(outdir, exist_ok=True)
    for stale in glob.glob(os.path.join(outdir, "*")):
        if os.path.isfile(stale):
            os.remove(stale)
    with open(source, "wb") as f:
        f.write(bytes(tflite))
    cmd = [sys.executable, "-m", "ethosu.vela", source, "--output-dir", outdir,
           "--accelerator-config", accelerator, "--config", CONFIG_FILE,
           "--system-config", system_config, "--memory-mode", memory_mode]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=workdir)
    except subprocess.TimeoutExpired:
        raise VelaError(f"Vela did not finish within {TIMEOUT_S} s") from None
    optimised = os.path.join(outdir, "partition_vela.tflite")
    if run.returncode != 0 or not os.path.exists(optimised):
        reason = _reason(run.stdout, run.stderr, run.returncode)
        if bytes(tflite[4:8]) != b"TFL3":
            reason += " (the input has no TFLite file identifier \"TFL3\")"
        raise VelaError("Vela failed: " + reason)

    stdout = run.stdout
    npu, cpu = _count(stdout, "NPU"), _count(stdout, "CPU")
    if npu == 0:
        why = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith("Reason:")]
        raise VelaError(f"Vela put no operator on the NPU ({cpu} CPU operators)"
                        + (f": {_one_line(why[0][len('Reason:'):])}" if why else ""))
    summary = _summary_csv(outdir)
    model = _read_optimised(optimised)
    ins, outs, offsets = model["inputs"], model["outputs"], model["offsets"]
    cms, ro, scratch, fast = ins[:4]
    fast_alias = fast["index"] == scratch["index"]
    regions = [VelaRegion(0, "read_only", len(ro["data"])),
               VelaRegion(1, "scratch", scratch["size"]),
               VelaRegion(2, "scratch" if fast_alias else "scratch_fast", fast["size"])]
    for kind, tensors in (("input", ins[4:]), ("output", outs)):
        for t in tensors:
            regions.append(VelaRegion(len(regions), f"{kind}:{t['name']}", t["size"], offsets.get(t["index"])))

    def kib(column):
        return int(round(float(summary.get(column, 0) or 0) * 1024))

    at = stdout.find("Network summary")
    return VelaPartition(
        command_stream=cms["data"], read_only=ro["data"], scratch_bytes=scratch["size"],
        scratch_fast_bytes=0 if fast_alias else fast["size"], regions=regions,
        npu_operators=npu, cpu_operators=cpu,
        cycles=int(round(float(summary["cycles_total"]))), sram_bytes=kib("sram_memory_used"),
        offchip_flash_bytes=kib("off_chip_flash_memory_used"),
        log=(stdout[at:] if at >= 0 else stdout).strip(),
        accelerator=accelerator, system_config=system_config, memory_mode=memory_mode,
        clock_hz=float(summary.get("core_clock", 0) or 0),
        warnings=[ln.strip() for ln in stdout.splitlines() if ln.startswith("Warning")],
        optimised=open(optimised, "rb").read())


_compiled: dict = {}


def compile_partition_cached(tflite: bytes, accelerator: str = "ethos-u55-128", system_config: str | None = None,
                             memory_mode: str | None = None) -> VelaPartition:
    """compile_partition, once per (model bytes, options) in this process: the memory plan asks for a
    partition's scratch size while lowering, the backend for its command stream when it emits."""
    key = (bytes(tflite), accelerator, system_config, memory_mode, vela_version())
    if key not in _compiled:
        _compiled[key] = compile_partition(tflite, accelerator, system_config, memory_mode)
    return _compiled[key]
