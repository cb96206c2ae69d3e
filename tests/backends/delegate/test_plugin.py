"""examples/plugin_backend: a separate package adds a target and a backend through entry points.
It is installed into a folder of its own and used from a subprocess that has that folder on its path."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow
PLUGIN = os.path.join(ROOT, "examples", "plugin_backend")
KWS = os.path.join(ROOT, "examples", "kws_int8.onnx")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    where = tmp_path_factory.mktemp("plugin_site")
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--target", str(where), PLUGIN], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return where


def edgecc_with(site, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "edgecc.compiler.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)


def test_the_plugin_target_is_listed(site):
    p = edgecc_with(site, "targets")
    assert p.returncode == 0 and "toy-npu" in p.stdout, p.stdout + p.stderr


def test_the_plugin_backend_compiles_and_runs_a_model(site, tmp_path):
    out = tmp_path / "kws_toy"
    p = edgecc_with(site, KWS, "--target", "toy-npu", "-o", out)
    assert p.returncode == 0, p.stderr
    p = edgecc_with(site, "verify", KWS, "--target", "toy-npu", "--data", KWS.replace(".onnx", ".npz"))
    assert p.returncode == 0, p.stdout + p.stderr
    mapping = (out / "mapping.txt").read_text()
    assert "Mapped to Toy NPU" in mapping
    # the plugin's own rule: kws's layers hold under 16 KiB of weights each, so nothing is refused for it
    assert "the Toy NPU holds" not in mapping


def test_a_malformed_capability_table_is_refused_in_one_line(site, tmp_path):
    toml = site / "edgecc_toy_npu" / "targets" / "toy-npu.toml"
    good = toml.read_text()
    try:
        toml.write_text(good.replace('stride_max = [2, 2]', 'stride_max = "two"', 1))
        out = tmp_path / "bad"
        p = edgecc_with(site, KWS, "--target", "toy-npu", "-o", out)
        assert p.returncode == 2
        assert p.stderr.count("\n") == 1 and "toy-npu.toml" in p.stderr and "ops.conv.stride_max" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr and not out.exists()
    finally:
        toml.write_text(good)
