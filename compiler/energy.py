"""Energy and time per inference: what each layer does, counted, times the target's access-cost table.

The target file's `[energy]` table (backends/*/targets/*.toml) is the model, as data: the chip's run
current at its clock and supply (so the energy of one instruction, one instruction a cycle), the
instructions edgecc's kernels spend per MAC and per element, the energy of a byte served by each
memory (flash, SRAM, DRAM, an accelerator's bus), the flash's stall per line fetched, and the idle
draw; for an accelerator, its active power. Every figure there has its source in a comment, and all
of them are estimates: report.json's "energy" says so in its "assumptions".

Per layer, in execution order, this counts:
  * MACs (a tiled layer's halo rows each time they are recomputed) and the instructions of the work
    (MACs times the instructions per MAC of the layer's precision and kernel, plus the elements it
    reads and writes times the instructions per element);
  * the bytes each memory serves: weights from where constants live (flash, or SRAM where code and
    constants are in SRAM), read once when they fit the data cache and once per block of output
    positions when they do not; activations read and written in SRAM (a tiled layer's recomputed
    rows again); scratch written and read; a partition's boundary tensors over the accelerator's
    link; and the stall cycles of the flash lines fetched;
then multiplies: macs_uj is the energy of the instructions (the layer's arithmetic), memory_uj that
of the bytes and stalls, uj their sum; the layers sum to total_uj. A partition runs on the
accelerator at its active power for the partition pass's time estimate while the CPU idles.

It reads the graph and the target; the C backend calls it for report.json (it changes nothing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgecc.ir.analysis import macs

from .memory import is_view

INT_DTYPES = ("i8", "u8", "i16", "i4", "u4")
DIGITS = 6  # report.json's energies: microjoules to the picojoule


@dataclass(frozen=True)
class EnergyTable:
    """A target's `[energy]` table (see any Cortex-M target file for the keys and their sources)."""

    supply_v: float
    run_ma: float  # whole chip, running, at clock_hz
    clock_hz: float
    idle_ma: float  # the low-power mode kept between inferences
    instructions: dict  # per int8_mac, int8_compact_mac, float_mac, int8_element, float_element
    pj_per_byte: dict  # per memory: flash, sram, dram, link (an accelerator's bus or USB)
    constants_in: str = "flash"  # the memory the weights are read from
    dcache_bytes: int = 0  # weights up to this size are read from their memory once per layer
    positions_per_weight_pass: int = 1  # output positions that share one pass over weights that do not fit
    line_bytes: int = 32  # bytes one flash fetch brings
    stall_cycles: float = 0.0  # cycles the core waits per flash fetch (default: the target's costs.flash_wait_states)
    accelerator_mw: float = 0.0  # an accelerator's active power
    source: str = ""  # the target file

    @property
    def nj_per_instruction(self) -> float:
        """The chip's energy per cycle at its clock (one instruction a cycle)."""
        return self.supply_v * self.run_ma * 1e-3 / self.clock_hz * 1e9

    @property
    def idle_uw(self) -> float:
        return self.supply_v * self.idle_ma * 1e3

    @staticmethod
    def of(target) -> "EnergyTable | None":
        """The target's table, or None when its file has no `[energy]` table."""
        e = dict(getattr(target, "energy", None) or {})
        if not e:
            return None
        per_byte = {m: float(e[f"{m}_pj_per_byte"]) for m in ("flash", "sram", "dram", "link")
                    if f"{m}_pj_per_byte" in e}
        steps = {k[:-len("_instructions")]: float(v) for k, v in e.items() if k.endswith("_instructions")}
        return EnergyTable(supply_v=float(e["supply_v"]), run_ma=float(e["run_ma"]), clock_hz=float(e["clock_hz"]),
                           idle_ma=float(e.get("idle_ma", 0.0)), instructions=steps, pj_per_byte=per_byte,
                           constants_in=e.get("constants_in", "flash"), dcache_bytes=int(e.get("dcache_bytes", 0)),
                           positions_per_weight_pass=int(e.get("positions_per_weight_pass", 1)),
                           line_bytes=int(e.get("line_bytes", 32)),
                           stall_cycles=float(e.get("stall_cycles_per_line", target.costs.get("flash_wait_states", 0))),
                           accelerator_mw=float(e.get("accelerator_mw", 0.0)), source=target.path)


@dataclass
class LayerCount:
    """What one layer does in one inference, before any energy figure is applied."""

    name: str
    op: str
    device: str = "cpu"  # or "accelerator"
    macs: int = 0
    halo_macs: int = 0  # of `macs`: the rows a tiled layer computes again
    instructions: float = 0.0
    stall_cycles: float = 0.0
    accelerator_s: float = 0.0
    bytes: dict = field(default_factory=dict)  # memory -> bytes it serves

    def add(self, memory: str, n: float) -> None:
        if n:
            self.bytes[memory] = self.bytes.get(memory, 0) + n


def _precision(op) -> str:
    """int8 or float: the precision the layer's arithmetic runs in (its first run-time operand's dtype)."""
    x = next((v for v in op.inputs() if not v.is_const), op.results[0])
    return "int8" if x.type.dtype in INT_DTYPES else "float"


def _activation_bytes(op) -> int:
    return sum(v.type.nbytes for v in op.inputs() if not v.is_const) + sum(r.type.nbytes for r in op.results)


def _weight_passes(op, table: EnergyTable) -> int:
    """How often a layer reads its weights from their memory: once when they fit the data cache, else once
    per block of output positions (the kernels stream the weights past a few positions at a time)."""
    consts = [v for v in op.inputs() if v.is_const]
    weights = sum(v.type.nbytes for v in consts)
    if not weights or weights <= table.dcache_bytes or not macs(op):
        return 1
    r = op.results[0].type
    # output channels: the weights' first axis for a conv, the result's last axis for a matrix product
    channels = consts[0].type.shape[0] if op.kind in ("conv", "conv_transpose") and consts[0].type.rank else \
        (r.shape[-1] if r.rank else 1)
    positions = max(r.size // max(channels, 1), 1)
    return math.ceil(positions / max(table.positions_per_weight_pass, 1))


def _count_cpu(op, table: EnergyTable, compact: bool, count: LayerCount, repeat: float = 1.0) -> None:
    """Add one CPU layer's work to `count`, `repeat` times (a tiled layer's share with its halo)."""
    if is_view(op):
        return
    precision = _precision(op)
    n = macs(op) * repeat
    per_mac = table.instructions.get(f"{precision}_compact_mac" if compact else f"{precision}_mac", 0.0)
    # a layer with MACs has its per-output work (requantization, stores) in the per-MAC figure
    elements = 0 if n else sum(r.type.size for r in op.results) * repeat
    count.instructions += n * per_mac + elements * table.instructions.get(f"{precision}_element", 0.0)
    weights = sum(v.type.nbytes for v in op.inputs() if v.is_const) * _weight_passes(op, table)
    count.add(table.constants_in, weights)
    if table.constants_in == "flash":
        count.stall_cycles += weights / table.line_bytes * table.stall_cycles
    count.add("sram", _activation_bytes(op) * repeat)


def _tiled(op, table: EnergyTable, compact, count: LayerCount) -> None:
    """A tiled layer: each inner layer as often as its rows are computed, halo included."""
    from edgecc.ir.tiling import chain, computed_macs

    layers = chain(op.regions[0])
    for inner in layers:
        height = inner.result.type.shape[1]
        rows = computed_macs([*layers], op.attrs["rows"], lambda o: height if o is inner else 0)
        _count_cpu(inner, table, compact(inner), count, repeat=rows / height)
    count.macs = macs(op)
    count.halo_macs = count.macs - sum(macs(inner) for inner in layers)


def _partition(op, target, table: EnergyTable, count: LayerCount) -> None:
    """A partition: the accelerator's time (the partition pass's estimate), its weights read from where
    constants live, its boundary tensors over the link."""
    costs = target.accelerator
    body = op.regions[0]
    moved = sum(v.type.nbytes for v in op.operands) + sum(v.type.nbytes for v in op.results)
    count.device = "accelerator"
    count.macs = macs(op)
    count.accelerator_s = (costs["invoke_overhead_cycles"] + count.macs / costs["macs_per_cycle"]
                           + moved / costs["transfer_bytes_per_cycle"]) / costs["clock_hz"]
    count.add(table.constants_in, sum(c.type.nbytes for c in body.constants))
    count.add("link", moved)


def count_layers(graph, target, compact=lambda op: False) -> list:
    """A LayerCount per layer of the lowered graph, in execution order; `compact(op)`: whether the backend
    runs the layer with its shared compact kernel (more instructions per MAC)."""
    table = EnergyTable.of(target)
    plan = graph.meta.get("memory_plan")
    counts = []
    for op in graph.ops:
        c = LayerCount(name=op.name or op.results[0].name, op=op.kind)
        if op.kind == "partition":
            _partition(op, target, table, c)
        elif op.kind == "tiled":
            _tiled(op, table, compact, c)
        else:
            _count_cpu(op, table, compact(op), c)
            c.macs = macs(op)
        if plan is not None:  # the layer's scratch (e.g. gathered receptive fields), written and read once
            c.add("sram", 2 * plan.scratch.get(op, (0, 0))[1])
        counts.append(c)
    return counts


def _uj(pj: float) -> float:
    return round(pj * 1e-6, DIGITS)


def layer_energy(c: LayerCount, table: EnergyTable) -> dict:
    """One layer's row of report.json "energy": its energies (uj = macs_uj + memory_uj) and time."""
    nj = table.nj_per_instruction
    if c.device == "accelerator":
        # the accelerator at its active power while the CPU waits in its low-power mode
        compute_pj = c.accelerator_s * (table.accelerator_mw * 1e-3 + table.idle_uw * 1e-6) * 1e12
        seconds = c.accelerator_s
    else:
        compute_pj = c.instructions * nj * 1e3
        seconds = (c.instructions + c.stall_cycles) / table.clock_hz
    memory_pj = sum(n * table.pj_per_byte.get(m, 0.0) for m, n in c.bytes.items()) + c.stall_cycles * nj * 1e3
    macs_uj, memory_uj = _uj(compute_pj), _uj(memory_pj)
    return dict(name=c.name, op=c.op, device=c.device, uj=round(macs_uj + memory_uj, DIGITS), macs_uj=macs_uj,
                memory_uj=memory_uj, time_us=round(seconds * 1e6, 3), macs=int(c.macs), halo_macs=int(c.halo_macs),
                instructions=int(round(c.instructions)), stall_cycles=int(round(c.stall_cycles)),
                bytes={m: int(round(n)) for m, n in sorted(c.bytes.items())})


def assumptions(table: EnergyTable) -> dict:
    """What the figures rest on, for report.json: every number the estimate used, and that it is one."""
    return dict(
        estimate=("an estimate, not a measurement: datasheet run current and published per-access energies "
                  "(their sources in the target file) times counted MACs, elements and bytes"),
        target_file=table.source.replace("\\", "/").rsplit("/", 1)[-1], supply_v=table.supply_v,
        run_ma=table.run_ma, clock_hz=table.clock_hz, nj_per_instruction=round(table.nj_per_instruction, 6),
        one_instruction_per_cycle=True, instructions_per=dict(sorted(table.instructions.items())),
        pj_per_byte=dict(sorted(table.pj_per_byte.items())), weights_in=table.constants_in,
        dcache_bytes=table.dcache_bytes, positions_per_weight_pass=table.positions_per_weight_pass,
        flash_line_bytes=table.line_bytes, flash_stall_cycles_per_line=table.stall_cycles,
        idle_uw=round(table.idle_uw, 3),
        accelerator_mw=table.accelerator_mw,
        not_modelled=["cache misses on activations", "interrupts and the code outside the model",
                      "temperature and process spread (datasheet typical figures)"])


def energy_section(graph, target, compact=lambda op: False) -> dict | None:
    """report.json "energy": total_uj, time_us, per layer uj = macs_uj + memory_uj, and the assumptions;
    None when the target file has no `[energy]` table."""
    table = EnergyTable.of(target)
    if table is None:
        return None
    layers = [layer_energy(c, table) for c in count_layers(graph, target, compact)]
    total = round(sum(r["uj"] for r in layers), DIGITS)
    seconds = sum(r["time_us"] for r in layers) * 1e-6
    # at one inference a second, the rest of the second in the low-power mode
    average_uw = total + table.idle_uw * max(1.0 - seconds, 0.0)
    return dict(total_uj=total, time_us=round(seconds * 1e6, 3), average_uw_at_1_hz=round(average_uw, 3),
                accelerator_macs=int(sum(r["macs"] for r in layers if r["device"] == "accelerator")),
                macs=int(sum(r["macs"] for r in layers)), layers=layers, assumptions=assumptions(table))
