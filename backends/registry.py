"""Backends and targets, found through Python entry points.

A separate package adds a backend with an `edgecc.backends` entry point (a Backend subclass)
and a target with an `edgecc.targets` entry point naming a TOML file or a folder of them.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points

from edgecc.ir.errors import EdgeccError


@dataclass(frozen=True)
class Target:
    """A target description, read from its TOML file: data, not code."""

    name: str
    backend: str
    description: str
    cflags: tuple = ()
    isa: dict = field(default_factory=dict)  # features: dsp, fpu, helium, ...
    sram: int = 0  # bytes of a reference board; 0 = no limit
    flash: int = 0
    costs: dict = field(default_factory=dict)  # numbers the passes read
    passes: tuple = ()  # the pipeline, by pass name
    path: str = ""
    toolchain: str = ""  # cross compiler prefix ("arm-none-eabi-"); "" = the system C compiler
    emulator: dict = field(default_factory=dict)  # how to run the target's code (backends/c/emulator.py)
    accelerator: dict = field(default_factory=dict)  # a delegate target's capability table and costs
    options: dict = field(default_factory=dict)  # settings a backend reads from its own [options] table
    energy: dict = field(default_factory=dict)  # the access-cost table of the energy estimate (compiler/energy.py)


def _read_target(path: str) -> Target:
    with open(path, "rb") as f:
        d = tomllib.load(f)
    return Target(name=d["name"], backend=d["backend"], description=d.get("description", ""),
                  cflags=tuple(d.get("cflags", ())), isa=dict(d.get("isa", {})), sram=int(d.get("sram", 0)),
                  flash=int(d.get("flash", 0)), costs=dict(d.get("costs", {})), passes=tuple(d.get("passes", ())),
                  path=path, toolchain=d.get("toolchain", ""), emulator=dict(d.get("emulator", {})),
                  accelerator=dict(d.get("accelerator", {})), options=dict(d.get("options", {})),
                  energy=dict(d.get("energy", {})))


def _target_files(ref) -> list:
    ref = str(ref)
    if os.path.isdir(ref):
        return sorted(os.path.join(ref, f) for f in os.listdir(ref) if f.endswith(".toml"))
    return [ref]


@lru_cache(maxsize=None)
def targets() -> dict:
    """Every target any installed package declares, by name."""
    found = {}
    for ep in sorted(entry_points(group="edgecc.targets"), key=lambda e: e.name):
        for path in _target_files(ep.load()):
            t = _read_target(path)
            found.setdefault(t.name, t)
    return found


@lru_cache(maxsize=None)
def backends() -> dict:
    return {ep.name: ep.load() for ep in sorted(entry_points(group="edgecc.backends"), key=lambda e: e.name)}


def get_target(name: str) -> Target:
    t = targets().get(name)
    if t is None:
        raise EdgeccError(f"unknown target '{name}' (known: {', '.join(sorted(targets()))})")
    return t


def backend_for(target, optimize: str = "balanced") -> "object":
    """An instance of the backend that serves `target` (a Target or a target name); `optimize`: how it
    trades code size against speed ("balanced", "speed" or "size")."""
    t = get_target(target) if isinstance(target, str) else target
    cls = backends().get(t.backend)
    if cls is None:
        raise EdgeccError(f"target '{t.name}' needs backend '{t.backend}', which is not installed")
    if optimize not in cls.OPTIMIZE:
        raise EdgeccError(f"unknown optimization '{optimize}' (known: {', '.join(cls.OPTIMIZE)})")
    return cls(t, optimize=optimize)


def list_targets() -> list:
    return [(t.name, t.description) for t in sorted(targets().values(), key=lambda t: t.name)]
