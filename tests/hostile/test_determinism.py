"""The same model gives byte-identical output: compiled twice by the command line in fresh processes with
different string-hash seeds (Python's set and dict-of-str orders change with PYTHONHASHSEED), from model
copies in different folders into output folders at different paths, the two output trees hold the same
files with the same bytes. What this catches: iteration over a set, a timestamp, an absolute path or a
process-dependent name in anything generated (C, headers, Makefile, report.json, the partitions' .tflite
and blobs of the delegate backend)."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import mlperf_path

pytestmark = pytest.mark.slow
HASH_SEEDS = ("0", "12345")


def compile_in_fresh_process(model: str, target: str, out, hash_seed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    p = subprocess.run([sys.executable, "-m", "edgecc.compiler.cli", model, "--target", target, "-o", str(out)],
                       capture_output=True, text=True, env=env, cwd=os.path.dirname(model), timeout=600)
    assert p.returncode == 0, p.stderr


def tree(root) -> dict:
    """Relative path -> bytes of every file under root."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


@pytest.mark.parametrize("stem, target", [("vww_int8", "cortex-m7"), ("kws_int8", "edgetpu")])
def test_two_compiles_give_identical_trees(stem, target, tmp_path):
    outputs = []
    for run, hash_seed in enumerate(HASH_SEEDS):
        folder = tmp_path / f"run{run}_seed{hash_seed}"
        folder.mkdir()
        model = str(folder / f"{stem}.onnx")
        shutil.copyfile(mlperf_path(stem), model)
        out = folder / "out" / ("a" * (run + 1))  # different path lengths too
        compile_in_fresh_process(model, target, out, hash_seed)
        outputs.append(tree(out))
    first, second = outputs
    assert sorted(first) == sorted(second), "the two compiles wrote different files"
    assert any(name.endswith(".c") for name in first) and "report.json" in first
    differ = [name for name in sorted(first) if first[name] != second[name]]
    assert not differ, f"files that differ between PYTHONHASHSEED={HASH_SEEDS[0]} and {HASH_SEEDS[1]}: {differ}"
    for name, data in first.items():  # the folders differ, so neither may appear in what was written
        assert str(tmp_path).encode() not in data, f"{name} holds an absolute path"
