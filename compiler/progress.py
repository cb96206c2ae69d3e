"""Progress bars for the long steps (calibration, the tiling search, emulator runs, a compare's compiles),
drawn by tqdm on stderr, and only when stderr is a terminal: logs and pipes get nothing.

A step reports through a callable `progress(label, done, total)` that it is handed (None: it reports
nothing); the command line hands it `for_stderr()`. Each label gets a bar of its own, closed (its line
ended) when done reaches total; a step that starts over under the same label starts a new bar.
"""
from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBars:
    """callable(label, done, total): moves the bar of `label` to `done` of `total` on `stream`."""

    def __init__(self, stream):
        self.stream = stream
        self._bar = None
        self._label = None

    def __call__(self, label: str, done: int, total: int) -> None:
        bar = self._bar
        if bar is None or label != self._label or done < bar.n or total != bar.total:
            self.close()
            bar = self._bar = tqdm(total=max(total, 1), desc=label, file=self.stream, leave=True,
                                   dynamic_ncols=True, mininterval=0.2)
            self._label = label
        bar.update(done - bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None


def for_stderr():
    """ProgressBars on stderr when it is a terminal, else None (no output at all)."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return ProgressBars(sys.stderr) if tty else None
