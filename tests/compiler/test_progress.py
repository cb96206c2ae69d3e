"""The progress bars of the long steps (compiler/progress.py): tqdm on a terminal, nothing otherwise."""
import io

from edgecc.compiler.progress import ProgressBars, for_stderr


def test_a_bar_per_label_that_ends_its_line_when_done():
    out = io.StringIO()
    bars = ProgressBars(out)
    for i in range(1, 4):
        bars("calibrating", i, 3)
    first = out.getvalue()
    assert "calibrating" in first and "3/3" in first and first.endswith("\n")
    bars("tiling search", 0, 2)
    bars("tiling search", 2, 2)
    assert out.getvalue()[len(first):].count("\n") == 1 and "tiling search" in out.getvalue()


def test_a_step_that_starts_over_gets_a_new_bar():
    out = io.StringIO()
    bars = ProgressBars(out)
    bars("tiling search", 1, 3)
    bars("tiling search", 0, 3)  # a new round of the search
    bars("tiling search", 3, 3)
    assert out.getvalue().count("\n") == 2  # the first bar closed when the second began, then the second


def test_no_progress_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert for_stderr() is None
