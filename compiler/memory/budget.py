"""Memory budgets: sizes as users write them, the budget a compile must meet, and the refusal.

The SRAM budget is `--sram` (options["sram"]) or else the target file's `sram` (0: no limit). The
arena and the stack of one inference share it; the stack is taken as the target's
`costs.stack_bytes` (STACK_BYTES when the file does not say), so a plan fits when
arena + stack <= budget. The flash budget is `--flash` or the target's `flash`: the constant data
alone must fit it (code and the kernels' own tables come on top).
"""
from __future__ import annotations

import re

from edgecc.ir.errors import EdgeccError

STACK_BYTES = 512
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*")
_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024, "g": 1024 ** 3}


def parse_size(text) -> int:
    """'40960', '40K', '40KiB', '1.5M', '2G' -> bytes (K = 1024). Raises ValueError."""
    if isinstance(text, int):
        return text
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ValueError(f"expected a size in bytes such as 40960, 40K, 1M or 2G, got '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def size_text(n: int) -> str:
    """A size the way a user writes it: 8K, 1M, or bytes."""
    for unit, scale in (("M", 1024 * 1024), ("K", 1024)):
        if n and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def stack_bytes(target) -> int:
    costs = getattr(target, "costs", None) or {}
    return int(costs.get("stack_bytes", STACK_BYTES))


def sram_budget(ctx) -> tuple[int, str]:
    """(bytes, how it was given) of the SRAM the model may use; bytes 0 = no limit."""
    options = ctx.options if ctx is not None else {}
    if options.get("sram"):
        return int(options["sram"]), f"--sram {size_text(int(options['sram']))} given"
    target = ctx.target if ctx is not None else None
    sram = int(getattr(target, "sram", 0) or 0)
    return sram, f"{getattr(target, 'name', 'the target')} has {size_text(sram)}"


def refuse(needed: int, layer, given: str, file: str = "") -> EdgeccError:
    """The one-line error for a budget no plan meets: the floor, the layer at its peak, the budget."""
    name = (getattr(layer, "name", "") or getattr(layer, "kind", "?")).split(";")[0]  # exporters join fused names
    return EdgeccError(f"needs at least {kib(needed)} of SRAM (layer '{name}'); {given}", file=file)


def check_flash(graph, ctx) -> None:
    """Refuse a model whose constants alone exceed the flash budget."""
    options = ctx.options if ctx is not None else {}
    flash = int(options.get("flash") or getattr(getattr(ctx, "target", None), "flash", 0) or 0)
    if not flash:
        return
    constants = list(graph.constants) + [c for op in graph.ops for r in op.regions for c in r.constants]
    need = sum(c.type.nbytes for c in {id(c): c for c in constants}.values())
    if need > flash:
        given = f"--flash {size_text(flash)} given" if options.get("flash") else \
            f"{ctx.target.name} has {size_text(flash)}"
        raise EdgeccError(f"needs at least {kib(need)} of flash for its weights; {given}", file=options.get("file", ""))
