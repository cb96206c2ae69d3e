"""A progress bar for the long parts of quantization (calibration and the report run the model
once per sample in the interpreter). Drawn on stderr, and only when stderr is a terminal: logs and
pipes get nothing (the command line decides, see `for_stderr`)."""
from __future__ import annotations

import sys

WIDTH = 30


class ProgressBar:
    """callable(label, done, total): redraws one line; a finished bar ends its line."""

    def __init__(self, stream):
        self.stream = stream
        self._last = None

    def __call__(self, label: str, done: int, total: int) -> None:
        total = max(total, 1)
        state = (label, 100 * done // total)
        if state == self._last:  # redraw once per percent, not once per sample
            return
        self._last = state
        filled = WIDTH * done // total
        self.stream.write(f"\r{label:<12} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}"
                          + ("\n" if done >= total else ""))
        self.stream.flush()


def for_stderr():
    """A ProgressBar on stderr when it is a terminal, else None (no output at all)."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return ProgressBar(sys.stderr) if tty else None
