"""The hostile-input corpus: several hundred broken ONNX models made from three real ones.

    cases = write_corpus(folder)     # [Case(name, kind, path, must_refuse), ...]
    python tests/hostile/make_corpus.py FOLDER    # the same from the shell, then a count per kind

The sources are MLPerf Tiny's keyword spotter (an int8 QDQ CNN) and image classifier (a float
ResNet), and the zoo's float transformer block (tests/models/make_models.py). Each kind of
breakage (the corpus_*.py modules: bytes, structure, tensors, nodes) is applied to each source
where it makes sense, in several variants; random choices are seeded by the source and kind, so
the corpus is the same on every run. Each case is a folder of its own, `FOLDER/<source>.<kind>.
<variant>/model.onnx` (external-data cases put their companions beside it and a `secret.bin` in
FOLDER, which an escape would read).
"""
from __future__ import annotations

import os
import sys
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus_bytes  # noqa: E402
import corpus_nodes  # noqa: E402
import corpus_structure  # noqa: E402
import corpus_tensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("EDGECC_SHARED", os.path.normpath(os.path.join(ROOT, "..", "shared")))
MLPERF = os.path.join(SHARED, "models", "mlperf_tiny")
KINDS = {**corpus_bytes.KINDS, **corpus_structure.KINDS, **corpus_tensors.KINDS, **corpus_nodes.KINDS}


@dataclass(frozen=True)
class Case:
    name: str  # <source>.<kind>.<variant>
    kind: str  # the breakage: one of KINDS
    path: str  # the model file
    must_refuse: bool  # False: compiling it is right too (the breakage may leave a valid model)


def source_models(mlperf_dir: str = MLPERF) -> dict:
    """The three models the corpus breaks, by name."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import make_models

    models = {stem: onnx.load(os.path.join(mlperf_dir, f"{stem}.onnx")) for stem in ("kws_int8", "ic_fp32")}
    models["transformer_fp32"] = make_models.FLOAT_BUILDERS["transformer_fp32"]()
    return models


def write_case(folder: str, payload) -> str:
    """Write one variant's model into its own folder; the model's path."""
    os.makedirs(folder)
    path = os.path.join(folder, "model.onnx")
    if callable(payload):
        payload(folder)
    else:
        with open(path, "wb") as f:
            f.write(payload if isinstance(payload, bytes) else payload.SerializeToString())
    return path


def write_corpus(folder: str, mlperf_dir: str = MLPERF) -> list[Case]:
    """Write every case under `folder` (which must not hold an earlier corpus); the cases, in order."""
    cases = []
    for source, model in source_models(mlperf_dir).items():
        for kind, make in KINDS.items():
            rng = np.random.default_rng(zlib.crc32(f"{source}.{kind}".encode()))
            for variant in make(model, rng):
                name = f"{source}.{kind}.{variant.name}"
                path = write_case(os.path.join(folder, name), variant.payload)
                cases.append(Case(name, kind, path, variant.must_refuse))
    return cases


if __name__ == "__main__":
    written = write_corpus(sys.argv[1])
    for kind, n in sorted(Counter(c.kind for c in written).items()):
        print(f"{kind:20} {n}")
    print(f"{'total':20} {len(written)}")
