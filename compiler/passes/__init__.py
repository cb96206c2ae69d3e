"""The pass registry. A pass is a function `run(graph, ctx) -> graph`, one per module here,
registered by name with @register; pipelines name them (see compiler/pipeline.py)."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

PASSES: dict = {}


@dataclass
class PassContext:
    """What a pass may consult: the target description, the backend's capabilities, options."""

    target: object = None
    backend: object = None
    options: dict = field(default_factory=dict)


def register(name: str):
    def add(fn):
        PASSES[name] = fn
        return fn
    return add


def get_pass(name: str):
    if name not in PASSES:  # some pass modules may be imported already, not all
        for m in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{m.name}")
    return PASSES[name]
