"""What every backend is: a name, the targets it serves, a pipeline, a capability check, emit()."""
from __future__ import annotations


class Backend:
    name = ""

    # how code size is traded against speed: "balanced" (the default), "speed" or "size"
    OPTIMIZE = ("balanced", "speed", "size")

    def __init__(self, target, optimize: str = "balanced"):
        self.target = target
        self.optimize = optimize

    def pipeline(self) -> list:
        """Pass names to run before emit(), in order (by default the target file's list)."""
        return list(self.target.passes)

    def why_not(self, op) -> str | None:
        """None when this backend can run `op` as it is; otherwise the reason it cannot."""
        raise NotImplementedError

    def emit(self, graph, outdir: str, name: str = "model") -> list:
        """Render the lowered graph into files under outdir; return the paths written.
        Never changes the graph."""
        raise NotImplementedError
