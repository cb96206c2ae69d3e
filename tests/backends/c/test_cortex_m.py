"""The Cortex-M targets: their description files, the QEMU runner (backends/c/emulator.py) and
`edgecc verify --target cortex-m7`.

A small float model and a small int8 model, built by hand as IR, run on every emulated Cortex-M and
must give what the host build gives (int8 bit for bit; float within libm's last-bit differences);
their C compiles warning-free with each target's flags. The MLPerf Tiny int8 models run on the
emulated M7 through the acceptance harness (cbench.py m7) within 1 LSB of onnxruntime.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import have_gcc, load_cbench, mlperf_path
from edgecc.backends.c import emulator
from edgecc.backends.c.runner import build_and_run
from edgecc.backends.registry import backend_for, get_target, list_targets
from edgecc.compiler.pipeline import lower
from edgecc.ir import Graph, Op, TensorType, Value, verify
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant

CORTEX_M = ["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def have_arm() -> bool:
    return emulator.missing("cortex-m7") is None


needs_arm = pytest.mark.skipif(not have_arm(), reason="needs arm-none-eabi-gcc, libnewlib-arm-none-eabi and "
                                                     "qemu-system-arm")


# ---- the target files ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", CORTEX_M)
def test_target_file_describes_the_core(name):
    t = get_target(name)
    assert name in dict(list_targets())
    assert t.backend == "c" and t.description and t.toolchain == "arm-none-eabi-"
    assert f"-mcpu={name}" in t.cflags and "-mthumb" in t.cflags
    assert t.isa["fpu"] in ("none", "sp", "dp") and isinstance(t.isa["dsp"], bool)
    assert isinstance(t.isa["helium"], bool)
    assert ("-mfloat-abi=soft" in t.cflags) == (t.isa["fpu"] == "none")
    assert t.sram > 0 and t.flash > 0
    assert {"float_mac", "int8_mac"} <= set(t.costs)
    assert t.passes == get_target("host").passes
    e = t.emulator
    assert e["machine"] and e["timer"] in ("cmsdk", "systick") and e["insns_per_tick"] > 0
    assert e["code_length"] > 0 and e["ram_length"] > 0


def test_isa_features_follow_the_cores():
    isa = {n: get_target(n).isa for n in CORTEX_M}
    assert [n for n in CORTEX_M if isa[n]["dsp"]] == ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
    assert [n for n in CORTEX_M if isa[n]["helium"]] == ["cortex-m55"]
    assert isa["cortex-m0plus"]["fpu"] == "none" and isa["cortex-m4"]["fpu"] == "sp"


def test_a_target_file_is_all_it_takes(tmp_path, monkeypatch):
    """A vendor adds an MCU with a TOML file in a folder its package names as an `edgecc.targets`
    entry point: no code."""
    from edgecc.backends import registry

    text = open(get_target("cortex-m4").path, encoding="utf-8").read()
    text = text.replace('name = "cortex-m4"', 'name = "vendor-m4"').replace("sram = 131072", "sram = 65536")
    (tmp_path / "vendor-m4.toml").write_text(text)

    class VendorTargets:
        name, group = "vendor", "edgecc.targets"

        def load(self):
            return str(tmp_path)

    real = registry.entry_points
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: list(real(group=group)) + ([VendorTargets()] if group == "edgecc.targets" else []))
    registry.targets.cache_clear()
    try:
        t = get_target("vendor-m4")
        assert (t.sram, t.emulator["machine"], t.isa["dsp"]) == (65536, "mps2-an386", True)
        assert "vendor-m4" in dict(list_targets()) and "cortex-m4" in dict(list_targets())
        assert backend_for("vendor-m4").target is t
    finally:
        monkeypatch.undo()
        registry.targets.cache_clear()


# ---- two small models ----------------------------------------------------------------------------
def float_model() -> Graph:
    """conv 3x3 + relu (NCHW), mean over H and W, scale, tanh."""
    rng = np.random.default_rng(1)
    x = Value("x", TensorType((1, 3, 8, 8), "f32"))
    w = Value("w", TensorType((4, 3, 3, 3), "f32"), rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = Value("b", TensorType((4,), "f32"), rng.standard_normal(4).astype(np.float32))
    k = Value("k", TensorType((4,), "f32"), rng.standard_normal(4).astype(np.float32))
    c = Value("c", TensorType((1, 4, 8, 8), "f32"))
    m, s, y = (Value(n, TensorType((1, 4), "f32")) for n in ("m", "s", "y"))
    conv = fill_defaults("conv", dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], activation="relu"))
    ops = [Op("conv", [x, w, b], [c], conv, "conv"),
           Op("reduce_mean", [c], [m], dict(axes=[2, 3], keepdims=0), "mean"),
           Op("mul", [m, k], [s], {}, "scale"),
           Op("tanh", [s], [y], {}, "tanh")]
    g = Graph("float_net", [x], [y], ops, [w, b, k])
    verify(g)
    return g


def int8_model() -> Graph:
    """int8 NHWC conv 3x3 + relu (per-channel weights), global average pool, fully connected."""
    rng = np.random.default_rng(2)
    qx, qc, qp, qy = Quant((0.05,), (-3,)), Quant((0.1,), (-128,)), Quant((0.08,), (-100,)), Quant((0.2,), (7,))
    sw = tuple(float(s) for s in rng.uniform(0.005, 0.02, 8))
    x = Value("x", TensorType((1, 6, 6, 4), "i8", qx, "nhwc"))
    w = Value("w", TensorType((8, 3, 3, 4), "i8", Quant(sw, (0,) * 8, 0), "ohwi"),
              rng.integers(-127, 128, (8, 3, 3, 4)).astype(np.int8))
    b = Value("b", TensorType((8,), "i32", Quant(tuple(0.05 * s for s in sw), (0,) * 8, 0)),
              rng.integers(-500, 500, 8).astype(np.int32))
    fw = Value("fw", TensorType((3, 8), "i8", Quant((0.01,), (0,))), rng.integers(-127, 128, (3, 8)).astype(np.int8))
    c = Value("c", TensorType((1, 6, 6, 8), "i8", qc, "nhwc"))
    p = Value("p", TensorType((1, 1, 1, 8), "i8", qp, "nhwc"))
    r = Value("r", TensorType((1, 8), "i8", qp))
    y = Value("y", TensorType((1, 3), "i8", qy))
    conv = fill_defaults("conv", dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], activation="relu",
                                      channels_last=1))
    ops = [Op("conv", [x, w, b], [c], conv, "conv"),
           Op("global_average_pool", [c], [p], fill_defaults("global_average_pool", dict(channels_last=1)), "gap"),
           Op("reshape", [p], [r], dict(shape=[1, 8]), "flatten"),
           Op("fully_connected", [r, fw, None], [y], fill_defaults("fully_connected", {}), "fc")]
    g = Graph("int8_net", [x], [y], ops, [w, b, fw])
    verify(g)
    return g


MODELS = {"float": float_model, "int8": int8_model}


def emitted(kind, target, tmp_path):
    g = lower(MODELS[kind](), target, passes=["memory_plan"])
    out = tmp_path / f"{kind}-{target}"
    backend_for(target).emit(g, str(out))
    return g, str(out)


def model_input(g):
    v = g.inputs[0]
    rng = np.random.default_rng(0)
    if v.type.dtype == "f32":
        return rng.standard_normal(v.type.shape).astype(np.float32)
    return rng.integers(-128, 128, v.type.shape).astype(np.int8)


@pytest.mark.slow
@needs_arm
@pytest.mark.skipif(not have_gcc(), reason="needs gcc")
@pytest.mark.parametrize("kind", ["float", "int8"])
@pytest.mark.parametrize("target", CORTEX_M)
def test_emulated_run_matches_host(kind, target, tmp_path):
    g, src = emitted(kind, target, tmp_path)
    x = model_input(g)
    run = emulator.build_and_run(src, g, [x], target)
    want = build_and_run(src, g, [x])[0]
    got = run.outputs[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    if kind == "int8":
        np.testing.assert_array_equal(got, want)
    else:  # newlib's and glibc's tanhf/expf may differ in the last bit
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert run.insns > 1000 and run.stack > 0
    assert run.static_ram >= sum(v.type.nbytes for v in g.inputs + g.outputs)
    assert run.flash >= sum(c.type.nbytes for c in g.constants)
    assert run.ram == run.static_ram + run.stack


@pytest.mark.slow
@needs_arm
@pytest.mark.parametrize("target", CORTEX_M)
def test_generated_c_is_warning_free_for_the_target(target, tmp_path):
    t = get_target(target)
    for kind in MODELS:
        _, src = emitted(kind, target, tmp_path)
        for c in sorted(f for f in os.listdir(src) if f.endswith(".c")):
            p = subprocess.run(["arm-none-eabi-gcc", *t.cflags, "-std=c99", "-O2", *WARNINGS, f"-I{src}", "-c",
                                os.path.join(src, c), "-o", str(tmp_path / (c + ".o"))],
                               capture_output=True, text=True)
            assert p.returncode == 0, f"{kind} model, {c}: {p.stderr}"


# ---- the emulator's measurements -----------------------------------------------------------------
LOOP_MODEL = """#include <stdint.h>
#include "model.h"
static uint32_t io[2];
void *model_input(int index) { (void)index; return &io[0]; }
const void *model_output(int index) { (void)index; return &io[1]; }
/* exactly 2 instructions per iteration; unified syntax also for Armv6-M's Thumb-1 */
int model_invoke(void) {
  uint32_t n = io[0];
  __asm volatile(".syntax unified\\n1: subs %0, %0, #1\\n\\tbne 1b\\n\\t.syntax divided" : "+l"(n) : : "cc");
  io[1] = io[0] + *(volatile uint32_t *)((volatile uint8_t *)io + (io[0] & 3u));
  return 0;
}
"""
LOOP_HEADER = """#define MODEL_INPUT_0_BYTES 4
#define MODEL_OUTPUT_0_BYTES 4
void *model_input(int index);
const void *model_output(int index);
int model_invoke(void);
"""


class _Out:
    """The least of a graph the runner reads: inputs to count, outputs' dtype and shape."""

    def __init__(self):
        self.inputs = [None]
        self.outputs = [Value("out", TensorType((1,), "i32"))]


def loop_program(tmp_path) -> str:
    src = tmp_path / "loop"
    src.mkdir()
    (src / "model.c").write_text(LOOP_MODEL)
    (src / "model.h").write_text(LOOP_HEADER)
    return str(src)


@pytest.mark.slow
@needs_arm
@pytest.mark.parametrize("target", CORTEX_M)
def test_instruction_count_is_calibrated(target, tmp_path):
    """200,000 iterations of a 2-instruction loop read as 400,000 instructions, within one timer tick."""
    run = emulator.build_and_run(loop_program(tmp_path), _Out(), [np.array([200000], np.uint32)], target)
    assert int(run.outputs[0][0]) == 400000  # n plus n read back (aligned)
    assert abs(run.insns - 400000) <= get_target(target).emulator["insns_per_tick"] + 20


@pytest.mark.slow
@needs_arm
def test_unaligned_access_faults_on_m0plus_only(tmp_path):
    """Armv6-M has no unaligned word loads; the M3 that stands in for the M0+ is set to trap them."""
    src = loop_program(tmp_path)
    odd = [np.array([201], np.uint32)]
    with pytest.raises(Exception, match="faulted"):
        emulator.build_and_run(src, _Out(), odd, "cortex-m0plus")
    assert emulator.build_and_run(src, _Out(), odd, "cortex-m7").outputs[0].size == 1


@pytest.mark.slow
@needs_arm
def test_systick_wraps_are_counted(tmp_path):
    """The M55 board times with the 24-bit SysTick: a run longer than one wrap still counts right."""
    n = 300_000_000  # 600 M instructions = 19.2 M ticks of 31.25 ns, past 2^24 (about 3 s in QEMU)
    run = emulator.build_and_run(loop_program(tmp_path), _Out(), [np.array([n], np.uint32)], "cortex-m55")
    assert abs(run.insns - 2 * n) <= 100


# ---- the MLPerf Tiny int8 models on the emulated M7 ----------------------------------------------
@pytest.mark.slow
@needs_arm
@pytest.mark.parametrize("stem", ["kws_int8", "vww_int8", "ic_int8", "ad_int8"])
def test_mlperf_int8_on_emulated_m7(stem, tmp_path):
    from edgecc.compiler.driver import compile as compile_model

    out = str(tmp_path / "c")
    compile_model(mlperf_path(stem), target="cortex-m7", outdir=out, emit="c")
    res = load_cbench().run("m7", out, mlperf_path(stem, "npz"), "model", 1, WARNINGS)
    assert res["ok"], res.get("error")
    assert res["maxdiff"] <= 1, res


@pytest.mark.slow
@needs_arm
def test_verify_reports_instructions_flash_and_ram(tmp_path):
    import io

    from edgecc.compiler.verify import verify as verify_model

    out = io.StringIO()
    ok = verify_model(mlperf_path("ad_int8"), target="cortex-m7", data=mlperf_path("ad_int8", "npz"), out=out)
    text = out.getvalue()
    assert ok, text
    for label in ("instructions per inference", "per MAC", "flash", "RAM", "stack", "mps2-an500"):
        assert label in text, text


def test_verify_needs_the_tools(monkeypatch):
    """Without the cross compiler or QEMU, verify says what to install (one line, no traceback)."""
    from edgecc.compiler.verify import verify as verify_model
    from edgecc.ir.errors import EdgeccError

    monkeypatch.setattr(shutil, "which", lambda exe: None)
    with pytest.raises(EdgeccError, match="apt install"):
        verify_model("model.onnx", target="cortex-m7")
