"""Writing outputs so that a failure leaves nothing behind.

Everything is written under a temporary name next to the destination and renamed into place
only once it is complete. A new output directory arrives with one rename; into an existing
directory each finished file is renamed in (files of ours are replaced, the user's other files
are left alone, and nothing is moved until everything was written).
"""
from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager

from edgecc.ir.errors import EdgeccError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_name(dest: str) -> str:
    return os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


@contextmanager
def _parents_of(dest: str):
    """Create the missing folders above dest; remove the ones created if the body fails."""
    parent, missing = os.path.dirname(dest), None
    while parent and not os.path.exists(parent):
        missing, parent = parent, os.path.dirname(parent)
    if missing:
        os.makedirs(os.path.dirname(dest))
    try:
        yield
    except BaseException:
        if missing:
            shutil.rmtree(missing, ignore_errors=True)
        raise


def write_file_atomic(dest: str, text) -> str:
    """Write text (or bytes) to dest (replacing it) through a temporary file renamed at the end."""
    dest = os.path.abspath(dest)
    if os.path.isdir(dest):
        raise EdgeccError(f"{dest}: is a directory")
    with _parents_of(dest):
        tmp = _temporary_name(dest)
        try:
            if isinstance(text, bytes):
                with open(tmp, "xb") as f:
                    f.write(text)
            else:
                with open(tmp, "x", encoding="utf-8", newline="\n") as f:
                    f.write(text)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    return dest


@contextmanager
def atomic_directory(dest: str):
    """Yield a temporary directory next to dest; on success its files end up in dest. A folder the
    compile writes (partitions/, reference/) replaces the one already there, so no file of an earlier
    compile's is left in it to be built with the new ones."""
    dest = os.path.abspath(dest)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise EdgeccError(f"{dest}: exists and is not a directory")
    with _parents_of(dest):
        tmp = _temporary_name(dest)
        os.mkdir(tmp)
        try:
            yield tmp
            if not os.path.exists(dest):
                os.rename(tmp, dest)
                return
            for entry in sorted(os.listdir(tmp)):
                src, target = os.path.join(tmp, entry), os.path.join(dest, entry)
                if os.path.isdir(src) and os.path.isdir(target):
                    shutil.rmtree(target)
                os.replace(src, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
