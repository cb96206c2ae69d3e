"""Shared fixtures: where the shared models and tools are, the generated test models."""
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGECC_SHARED", os.path.normpath(os.path.join(ROOT, "..", "shared")))
MLPERF = os.path.join(SHARED, "models", "mlperf_tiny")


def edgecc(*args, cwd=None, timeout=300):
    """The command line, in a subprocess: `edgecc ARGS...` as a user types it."""
    return subprocess.run([sys.executable, "-m", "edgecc.compiler.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(autouse=True)
def order_independent_rng(request):
    """A test module's shared generator (`rng` or `RNG`) restarts for each test from a seed of the
    test's own id, so the data a test draws does not depend on which tests ran before it."""
    module = getattr(request, "module", None)
    for name in ("rng", "RNG"):
        if isinstance(getattr(module, name, None), np.random.Generator):
            setattr(module, name, np.random.default_rng(zlib.crc32(request.node.nodeid.encode())))


MLPERF_STEMS = ["kws_int8", "kws_fp32", "vww_int8", "vww_fp32", "ic_int8", "ic_fp32", "ad_int8", "ad_fp32"]


def mlperf_path(stem, ext="onnx"):
    path = os.path.join(MLPERF, f"{stem}.{ext}")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not here (set EDGECC_SHARED)")
    return path


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """Our own test models (tests/models/make_models.py), built once per session."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import make_models

    out = tmp_path_factory.mktemp("zoo")
    return make_models.build_all(str(out))


@pytest.fixture(scope="session")
def nodecases(tmp_path_factory):
    """The ONNX backend node cases for the edge op set, written by ../shared/tools/nodecases.py."""
    tool = os.path.join(SHARED, "tools", "nodecases.py")
    if not os.path.exists(tool):
        pytest.skip("nodecases.py is not here (set EDGECC_SHARED)")
    out = tmp_path_factory.mktemp("nodecases")
    subprocess.run([sys.executable, tool, str(out)], check=True, capture_output=True)
    return sorted(os.path.join(out, d) for d in os.listdir(out))


def load_cbench():
    """The acceptance harness ../shared/tools/cbench.py as a module (skips the test when it is absent)."""
    import importlib.util

    path = os.path.join(SHARED, "tools", "cbench.py")
    if not os.path.exists(path):
        pytest.skip("cbench.py is not here (set EDGECC_SHARED)")
    spec = importlib.util.spec_from_file_location("cbench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def have_gcc():
    return shutil.which("gcc") is not None
