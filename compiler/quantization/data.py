"""Calibration data: an .npz holding one array per model input, named after the input, with the N
samples stacked on a new leading axis (shape [N, *input_shape]). An input whose batch is 1 also takes
the samples along its batch axis ([N, *input_shape[1:]]: N images as one batch of N), the form most
datasets come in.

Every way the file can be wrong is a one-line EdgeccError naming the file and the array: not an
.npz, an array for no input, an input without an array, a shape or dtype that does not fit,
different sample counts, no samples at all. Floating inputs take any floating array (cast to
float32: numpy's default float64 is fine); an integer array for a float input is refused, since
it usually means raw pixels where the model wants scaled ones.
"""
from __future__ import annotations

import zipfile

import numpy as np

from edgecc.ir.errors import EdgeccError


def _shape(s) -> str:
    return "[" + ",".join(str(d) for d in s) + "]"


def _open(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise EdgeccError("no such calibration file", file=path) from None
    except OSError as e:
        raise EdgeccError(f"cannot read the calibration file: {e.strerror or e}", file=path) from None
    if magic == b"\x93NUMPY":
        raise EdgeccError("calibration data must be an .npz (numpy.savez) with one array per input, "
                          "not a single .npy array", file=path)
    if not magic.startswith(b"PK"):
        raise EdgeccError("calibration data is not an .npz file (numpy.savez)", file=path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise EdgeccError(f"cannot read the calibration data as .npz ({e})", file=path) from None


def _check(path: str, name: str, a: np.ndarray, t) -> np.ndarray:
    want = tuple(t.shape)
    if want and want[0] == 1 and a.ndim == len(want) and tuple(a.shape[1:]) == want[1:]:
        a = a[:, None]  # the samples along the batch axis
    if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
        also = f" or [N,{','.join(str(d) for d in want[1:])}]" if want and want[0] == 1 else ""
        raise EdgeccError(f"calibration array '{name}' has shape {_shape(a.shape)}, expected "
                          f"[N,{','.join(str(d) for d in want)}]{also} (N samples of input '{name}')", file=path)
    if t.dtype == "f32":
        if a.dtype.kind != "f":
            raise EdgeccError(f"calibration array '{name}' is {a.dtype}, input '{name}' is float32 "
                              "(give the values the model takes, as floats)", file=path)
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise EdgeccError(f"calibration array '{name}' holds NaN or infinite values", file=path)
        return a
    if a.dtype != t.np_dtype:
        raise EdgeccError(f"calibration array '{name}' is {a.dtype}, input '{name}' is {t.np_dtype}", file=path)
    return a


def load_calibration(path, graph) -> dict:
    """{input name: array [N, *shape]} for every input of `graph`, checked (see the module docstring)."""
    path = str(path)
    return check_arrays(path, _open(path), graph)


def check_arrays(path: str, arrays: dict, graph) -> dict:
    """The arrays checked against graph's inputs (`path` names them in errors)."""
    if not graph.inputs:
        raise EdgeccError("the model has no inputs to calibrate", file=path)
    arrays = {k: np.asarray(a) for k, a in arrays.items()}
    names = [v.name for v in graph.inputs]
    extra = sorted(set(arrays) - set(names))
    if extra:
        raise EdgeccError(f"calibration array '{extra[0]}' names no input of the model "
                          f"(inputs: {', '.join(names)})", file=path)
    missing = [n for n in names if n not in arrays]
    if missing:
        raise EdgeccError(f"no calibration array for input '{missing[0]}' (the .npz holds "
                          f"{', '.join(sorted(arrays)) or 'nothing'})", file=path)
    out = {v.name: _check(path, v.name, arrays[v.name], v.type) for v in graph.inputs}
    counts = {len(a) for a in out.values()}
    if len(counts) > 1:
        detail = ", ".join(f"'{n}' {len(a)}" for n, a in out.items())
        raise EdgeccError(f"calibration arrays hold different numbers of samples ({detail})", file=path)
    if counts == {0}:
        raise EdgeccError("calibration data holds no samples (N = 0)", file=path)
    return out


def samples(calibration: dict, graph):
    """The calibration samples as input lists in graph.inputs order, one per sample."""
    n = len(next(iter(calibration.values())))
    for i in range(n):
        yield [calibration[v.name][i] for v in graph.inputs]


def count(calibration: dict) -> int:
    return len(next(iter(calibration.values())))
