"""The command line run in this process, as the hostile tests drive it: its exit status, stdout and
stderr, within a time limit (SIGALRM), with any exception it lets out reported as the status."""
from __future__ import annotations

import contextlib
import io
import signal


class TimeLimit(Exception):
    pass


def run_cli(argv: list, seconds: int) -> tuple:
    """(exit status, stdout, stderr) of `edgecc ARGV`; the status is the text of the exception instead
    when one escapes (a traceback the user would see), TimeLimit's after `seconds`."""
    from edgecc.compiler import cli

    def alarm(signum, frame):
        raise TimeLimit(f"over {seconds} s")
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    except Exception as e:  # noqa: BLE001  (any exception here is a finding, reported with its case)
        status = f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return status, out.getvalue(), err.getvalue()
