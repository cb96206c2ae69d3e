"""Register tiling for the float32 GEMM-like kernels (conv, fully_connected, matmul, gemm).

Their inner kernel computes a tile of P output rows (pixels) x W output columns (channels) held in
local accumulator arrays that gcc keeps in vector registers: at each reduction step it loads the
tile's weight row once, then for each row broadcasts one input value and multiply-adds it into
the row's accumulators. A tile is split into chunks of vector_floats columns (one vector register
each, a loop gcc vectorizes whole) plus a narrower remainder chunk, both sized to the target's
machine(). This module decides the tile shapes; templates only unroll them.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import current_target

MAX_ROWS = 8  # more rows per tile only grows the code
L1_WEIGHT_BYTES = 16 * 1024  # a tile's weights re-read from L1 for every row block up to this size


@dataclass(frozen=True)
class Machine:
    """What the tiles are sized to: floats per vector register and the registers there are."""

    vector_floats: int
    vector_registers: int
    # registers a reduction step needs besides the accumulators and the weight row: the broadcast input
    # and the product; none on Helium, whose VFMA takes the input from a core register and fuses the product
    step_registers: int = 2


HOST = Machine(8, 16)  # AVX2 (the acceptance builds with -march=native): 8 floats, 16 ymm registers


def machine() -> Machine:
    """The machine of the target being compiled for (kernels.current_target(); None is the host).

    gcc -O2 vectorizes a loop only when its trip count is a multiple of the vector length (its
    "very cheap" cost model adds no scalar epilogue), hence fixed-width chunks of vector_floats.
    Without a vector unit a chunk is one float: the tile becomes a block of scalar accumulators that
    gcc keeps in the FPU's 32 single-precision registers (Cortex-M4/M7/M33), or in the few core
    registers a soft-float target has left."""
    t = current_target()
    isa = t.isa if t is not None else {}
    if t is None or "simd" in isa:
        return HOST
    if isa.get("helium"):
        return Machine(4, 8, 0)  # MVE: 128-bit Q registers, 8 of them; VFMA Qda, Qn, Rm
    if isa.get("fpu", "none") in ("sp", "dp"):
        return Machine(1, 32)
    return Machine(1, 10)


def vector_floats() -> int:
    return machine().vector_floats


@dataclass
class ColumnTile:
    """`count` tiles side by side, the first at column `start`, each `width` columns wide, split
    into `chunks` [(offset in the tile, width)], computed `rows` output rows at a time."""

    start: int
    count: int
    width: int
    chunks: list
    rows: int

    def as_vars(self, nrows: int) -> dict:
        """Template variables for covering `nrows` rows: full blocks of `rows`, then a remainder."""
        return dict(start=self.start, count=self.count, width=self.width, chunks=self.chunks, rows=self.rows,
                    blocks=nrows // self.rows, rem=nrows % self.rows)


def _registers(width: int) -> int:
    """Registers a chunk of `width` floats occupies (full vectors, half vectors, then scalars)."""
    vf = machine().vector_floats
    half = vf // 2 if vf >= 8 else vf
    return width // vf + (width % vf) // half + (width % vf) % half


def _rows(vregs: int, nrows: int) -> int:
    """Most rows whose accumulators fit beside the weight row and what a step needs (Machine.step_registers).
    One row needs no weight registers: each weight vector is used once, straight from memory."""
    free = machine().vector_registers - machine().step_registers
    rows = 1
    while rows < MAX_ROWS and (rows + 1) * vregs + vregs <= free:
        rows += 1
    return max(1, min(rows, nrows))


def _tile(start: int, count: int, widths: list, nrows: int) -> ColumnTile:
    chunks, off = [], 0
    for w in widths:
        chunks.append((off, w))
        off += w
    return ColumnTile(start, count, off, chunks, _rows(sum(_registers(w) for w in widths), nrows))


def column_tiles(ncols: int, nrows: int, depth: int = 1) -> list:
    """Cover `ncols` output columns with register tiles for an output of `nrows` rows and a
    reduction of `depth` steps.

    Picks the tile width that minimizes loads: every tile re-reads all inputs (one broadcast per
    row and step) and every row block of a tile re-reads the tile's weights, from L2 when they
    do not stay in L1."""
    vf, regs = machine().vector_floats, machine().vector_registers
    nvec, rest = divmod(ncols, vf)
    if nvec == 0:
        return [_tile(0, 1, [rest], nrows)]
    candidates = []
    for v in range(1, min(nvec, regs - 2) + 1):
        count, left = divmod(nvec, v)
        tail = [vf] * left + ([rest] if rest else [])
        tiles = [_tile(0, count, [vf] * v, nrows)]
        if tail:
            tiles.append(_tile(count * v * vf, 1, tail, nrows))
        candidates.append(tiles)
        if rest and not left:  # or widen the last full tile by the remainder
            wide = [_tile((count - 1) * v * vf, 1, [vf] * v + [rest], nrows)]
            candidates.append(([_tile(0, count - 1, [vf] * v, nrows)] if count > 1 else []) + wide)

    def loads(tiles):
        total = 0.0
        for t in tiles:
            blocks = -(-nrows // t.rows)
            weight_cost = 1 if blocks == 1 or depth * t.width * 4 <= L1_WEIGHT_BYTES else 2
            total += t.count * (nrows + blocks * len(t.chunks) * weight_cost)
        return total
    return min(candidates, key=loads)  # the first (narrowest) of equals
