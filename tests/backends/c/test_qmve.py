"""The Helium (MVE) integer kernels of the Cortex-M55 (backends/c/kernels/qmve.py).

The integer kernel cases of test_quantized.py, plus shapes that take the MVE kernels' other branches, as the
M55's C: on the host (the prelude's plain C stand-ins for the intrinsics) against onnxruntime, under the
sanitizers, and on the emulated M55 bit for bit what the host build gave. QEMU must execute every MVE
instruction the kernels compile to: a program calling each helper of the prelude (and the compact average
pool, whose M55 form has a Helium loop) runs there (an UNDEF or a fault fails it) and gives the host's
results, and the MLPerf Tiny models' kernels use no MVE instruction
that program does not. The MLPerf Tiny int8 models on the emulated M55 meet issue 16's bars against the
same build with the scalar DSP kernels.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS, have_cc
from edgecc.backends.registry import get_target

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_quantized as tq  # noqa: E402
from kernel_cases import build_graph, run_cases  # noqa: E402

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
TARGET = "cortex-m55"
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def _own_cases() -> list:
    """Shapes for the MVE kernels' branches, built with test_quantized's helpers (and kept out of its list):
    a receptive field of exactly one vector, of 8 inputs (in registers, predicated), of 8 vectors and more
    (channels summed 2 at a time), an odd pixel count, 1 to 3 channels left over, a fully connected layer
    whose K is not a multiple of 16; depthwise with an odd output width, stride 2 and a 2x2 window (a 5x5 one,
    30 lanes, is left to the DSP kernel: test_quantized's conv_dw_5x5)."""
    before = len(tq.CASES)
    tq.conv_case("mve_1x1_k16", 16, 12, (5, 3), 1, pads=[0, 0, 0, 0])
    tq.conv_case("mve_1x1_k8_s2", 8, 6, (7, 7), 1, stride=2, pads=[0, 0, 0, 0])
    tq.conv_case("mve_3x3_k144_relu", 16, 9, (6, 5), 3, act="relu")
    tq.conv_case("mve_1x1_k130", 130, 5, (3, 3), 1, pads=[0, 0, 0, 0])
    tq.conv_case("mve_dw_odd_w", 12, 12, (6, 7), 3, group=12)
    tq.conv_case("mve_dw_s2_relu", 20, 20, (9, 11), 3, group=20, stride=2, act="relu")
    tq.conv_case("mve_dw_2x2_s2", 8, 8, (9, 9), 2, group=8, stride=2, pads=[0, 0, 1, 1])
    tq.fc_case("mve_fc_k40_n6", 1, 40, 6, act="relu")
    cases = tq.CASES[before:]
    del tq.CASES[before:]
    return cases


CASES = [c for c in tq.CASES if c.kind in ("conv", "fully_connected", "matmul", "gemm")] + _own_cases()


def templates(cases, target=TARGET) -> dict:
    """{case name: the template of its layer's kernel} on `target`, every layer specialized."""
    from edgecc.backends.c.kernels import select
    g = build_graph(cases)
    return {op.name: select(op, get_target(target), "speed").template for op in g.ops}


def test_helium_takes_the_int8_layers_it_covers():
    took = templates(CASES)
    for name in ("conv_asym_pad", "conv_c3_s2", "conv_1x1_odd_m", "conv_dilated_s2", "mve_1x1_k16", "mve_1x1_k8_s2",
                 "mve_3x3_k144_relu", "mve_1x1_k130", "fc_640", "fc_k_odd", "mve_fc_k40_n6"):
        assert took[name] == "q_conv_mve.c.j2", name
    for name in ("conv_dw_wide", "conv_dw_wide_s2", "conv_dw_2x2", "mve_dw_odd_w", "mve_dw_s2_relu", "mve_dw_2x2_s2"):
        assert took[name] == "q_dwconv_mve.c.j2", name
    # what the MVE kernels leave to the DSP ones: a float result, a 5x5 window (30 lanes), dilation, uint8
    assert took["fc_float_out"] == "q_conv_dsp.c.j2"
    assert took["conv_dw_5x5"] == "q_dwconv_dsp.c.j2"
    assert "mve" not in took["conv_dw_dilated"] and "mve" not in took["conv_u8"]
    # the cores without Helium never get them
    assert not any("mve" in t for t in templates(CASES, "cortex-m7").values())


@pytest.fixture(scope="module")
def host_run():
    return run_cases(CASES, cflags=STRICT_CFLAGS, target=TARGET, optimize="speed")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_helium_kernels_on_the_host(case, host_run):
    tq.check_case(case, host_run[case.name][0])


def test_sanitizers_helium_kernels():
    picked = [c for c in CASES if c.name in ("conv_asym_pad", "conv_1x1_odd_m", "mve_1x1_k8_s2", "mve_1x1_k130",
                                             "fc_k_odd", "mve_dw_odd_w", "mve_dw_s2_relu", "mve_dw_2x2_s2")]
    got = run_cases(picked, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"], target=TARGET, optimize="speed")
    for c in picked:
        tq.check_case(c, got[c.name][0])


def have_arm() -> bool:
    from edgecc.backends.c import emulator
    return emulator.missing(TARGET) is None


needs_arm = pytest.mark.skipif(not have_arm(), reason="needs arm-none-eabi-gcc, libnewlib-arm-none-eabi and "
                                                     "qemu-system-arm")


@pytest.mark.slow
@needs_arm
def test_helium_kernels_on_the_emulated_m55(host_run):
    got = run_cases(CASES, cflags=WARNINGS, target=TARGET, emulated=True, optimize="speed")
    for c in CASES:
        tq.check_case(c, got[c.name][0])
        np.testing.assert_array_equal(got[c.name][0], host_run[c.name][0], err_msg=c.name)


# ---- QEMU executes what the kernels use -------------------------------------------------------------------------
# Every helper of the prelude on data, its results written out: the same program runs on the host (the plain C
# stand-ins) and in QEMU (arm_mve.h).
EXERCISE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "model.h"
{prelude}
static int8_t in[64];
static int32_t out[OUT_WORDS];
/* a call the vectors live across: gcc saves them on the stack around it (VSTRW, VSTRH ... and back) */
static __attribute__((noinline)) void opaque(volatile int8_t *p) {{ p[0] = (int8_t)(p[0] + 1); }}
void *model_input(int index) {{ (void)index; return in; }}
const void *model_output(int index) {{ (void)index; return out; }}
int model_invoke(void) {{
  static const uint8_t window[16] = {{0, 1, 2, 3, 9, 10, 11, 12, 18, 19, 20, 21, 5, 6, 7, 8}};
  static const uint16_t columns[8] = {{0, 3, 6, 9, 12, 15, 18, 21}};
  static const uint32_t pixels[4] = {{0, 5, 10, 15}};
  static const int32_t words[4] = {{-1000, 3, 70000, -5}};
  static const float scales[4] = {{0.013f, 0.5f, 0.0071f, 1.0f}};
  int8_t bytes[64];
  int n = 0;
  memset(bytes, 0, sizeof bytes);
  const mve_s8x16 a = mve_load_s8(in), b = mve_load_s8(in + 16), t = mve_load_s8_first(in + 32, 11);
  const mve_u16x8 cols = mve_offsets_u16(columns);
  const mve_u32x4 pix = mve_offsets_u32(pixels);
  const mve_s32x4 ws = mve_load_s32(words);
  const mve_f32x4 sc = mve_load_f32(scales);
  const mve_u8x16 win = mve_offsets_u8(window);
  opaque(bytes);
  out[n++] = mve_dot(a, b);
  out[n++] = mve_dot_acc(-77, a, t);
  mve_store_s8(bytes, a);
  mve_store_s8_first(bytes + 16, b, 5);
  mve_copy(bytes + 24, in + 3, 21);
  out[n++] = mve_dot(mve_gather_s8(in, win), b);
  mve_store_s16_as_s8_first(bytes + 48, mve_gather_s16_first(in + 1, cols, 7), 7);
  const mve_s32x4 v = mve_add_s32(mve_s32x4_of(out[0], out[1], out[2], 12345), ws);
  const mve_s32x4 w = mve_add_s32(mve_dup_s32(out[0]), ws);
  mve_store_s32_as_s8(bytes + 56, mve_requant(v, sc, -3, -128, 127));
  mve_store_s32_as_s8_first(bytes + 60, mve_requant(w, mve_dup_f32(0.02f), 5, -20, 100), 3);
  mve_scatter_s32_as_s8(bytes + 40, pix, mve_requant(v, mve_dup_f32(0.001f), 0, -128, 127));
  mve_scatter_s32_as_s8_first(bytes + 41, pix, mve_requant(w, mve_dup_f32(0.03f), 1, -128, 127), 2);
  for (int i = 0; i < 64; i++) out[n++] = bytes[i];
  /* the quantized add, 4 lanes and a predicated tail of 3 */
  int8_t sum[23];
  mve_add_s8(sum, in, in + 23, 23, 0.731f, 1.27f, -3.5f, -128, 127);
  for (int i = 0; i < 23; i++) out[n++] = sum[i];
  /* the compact average pool (its Helium loop on the M55, the scalar one on the host): 3x3 windows, stride 2,
     padding, over 6 channels (a vector and a predicated tail of 2) */
  static const q_avg_pool_shape pool = {{.ih = 3, .iw = 3, .c = 6, .oh = 2, .ow = 2, .kh = 3, .kw = 3, .sh = 2,
                                        .sw = 2, .pt = 1, .pl = 1, .include_pad = 0, .zx = -7, .sx = 0.037f,
                                        .sy = 0.021f, .zy = 4}};
  int8_t pooled[24];
  q_average_pool_compact(&pool, in + 5, pooled);
  for (int i = 0; i < 24; i++) out[n++] = pooled[i];
  return 0;
}}
"""
OUT_WORDS = 3 + 64 + 23 + 24
HEADER = f"""#define MODEL_INPUT_0_BYTES 64
#define MODEL_OUTPUT_0_BYTES {4 * OUT_WORDS}
void *model_input(int index);
const void *model_output(int index);
int model_invoke(void);
"""


def exercise_program(tmp_path) -> str:
    from edgecc.backends.c.backend import _env
    src = tmp_path / "exercise"
    src.mkdir()
    prelude = "\n".join(_env().get_template(p).render(helium=True) for p in ("q_mve.c.j2", "compact/average_pool.c.j2"))
    (src / "model.c").write_text(f"#define OUT_WORDS {OUT_WORDS}\n" + EXERCISE.format(prelude=prelude))
    (src / "model.h").write_text(HEADER)
    return str(src)


class _Program:
    """The least of a graph the runners read: one int8 input, one int32 output."""

    def __init__(self):
        from edgecc.ir import TensorType, Value
        self.inputs = [Value("in", TensorType((64,), "i8"))]
        self.outputs = [Value("out", TensorType((OUT_WORDS,), "i32"))]


MVE_LINE = re.compile(r"^\s+(v[a-z0-9.]+)\s+(.*)$")


def mve_mnemonics(asm: str) -> set:
    """The MVE instructions of an assembly listing: those on q registers, and the predication ones."""
    found = set()
    for line in asm.splitlines():
        m = MVE_LINE.match(line)
        if m and (re.search(r"\bq[0-7]\b", m.group(2)) or m.group(1).startswith(("vctp", "vpst", "vpt"))):
            found.add(m.group(1))
    return found


def assembly(src_dir: str, tmp_path, name: str) -> str:
    t = get_target(TARGET)
    out = tmp_path / f"{name}.s"
    subprocess.run(["arm-none-eabi-gcc", *t.cflags, "-std=c99", "-O2", "-S", f"-I{src_dir}",
                    os.path.join(src_dir, "model.c"), "-o", str(out)], check=True, capture_output=True, text=True)
    return out.read_text()


@pytest.mark.slow
@needs_arm
def test_qemu_executes_every_helium_instruction_the_kernels_use(tmp_path):
    from edgecc.backends.c import emulator
    from edgecc.backends.c.runner import build_and_run as host_build_and_run
    from edgecc.compiler.driver import compile as compile_model
    from conftest import mlperf_path

    src = exercise_program(tmp_path)
    x = np.random.default_rng(5).integers(-128, 128, 64).astype(np.int8)
    got = emulator.build_and_run(src, _Program(), [x], TARGET, cflags=WARNINGS).outputs[0]  # a fault raises
    want = host_build_and_run(src, _Program(), [x], cflags=STRICT_CFLAGS + SANITIZE_CFLAGS)[0]
    np.testing.assert_array_equal(got, want)
    exercised = mve_mnemonics(assembly(src, tmp_path, "exercise"))
    assert {"vmladava.s8", "vldrb.8", "vstrb.32"} <= exercised, exercised
    for stem in ("kws_int8", "vww_int8", "ic_int8", "ad_int8"):
        out = str(tmp_path / stem)
        compile_model(mlperf_path(stem), target=TARGET, outdir=out, emit="c")
        used = mve_mnemonics(assembly(out, tmp_path, stem))
        assert used and used <= exercised, f"{stem}: {sorted(used - exercised)} not exercised in QEMU"


# ---- issue 16's bars on the MLPerf Tiny int8 models --------------------------------------------------------------
BARS = {"kws_int8": 0.45, "vww_int8": 0.45, "ic_int8": 0.45, "ad_int8": 0.6}  # instructions per MAC


def emulated(stem, tmp_path, monkeypatch, scalar: bool):
    """(run, MACs, largest difference from onnxruntime) of the model's M55 C in QEMU; scalar: the M55 build
    without its Helium kernels (the target's isa.helium off: the DSP kernels and scalar float tiles, what
    the M55 ran before them)."""
    from edgecc.backends.c import emulator
    from edgecc.compiler.driver import compile as compile_model
    from edgecc.ir.analysis import macs
    from conftest import mlperf_path

    with monkeypatch.context() as m:
        if scalar:
            m.setitem(get_target(TARGET).isa, "helium", False)
        out = str(tmp_path / (stem + ("_scalar" if scalar else "_mve")))
        art = compile_model(mlperf_path(stem), target=TARGET, outdir=out, emit="c")
    d = np.load(mlperf_path(stem, "npz"))
    ins = [d[k] for k in sorted(d.files) if k.startswith("input")]
    run = emulator.build_and_run(out, art.graph, ins, TARGET, cflags=WARNINGS)
    refs = [d[k] for k in sorted(d.files) if k.startswith("output")]
    worst = max(float(np.max(np.abs(y.astype(np.float64) - r.reshape(y.shape).astype(np.float64))))
                for y, r in zip(run.outputs, refs))
    return run, sum(macs(op) for op in art.graph.ops), worst


@pytest.mark.slow
@needs_arm
@pytest.mark.parametrize("stem", list(BARS))
def test_mlperf_int8_on_the_emulated_m55(stem, tmp_path, monkeypatch):
    run, n_macs, worst = emulated(stem, tmp_path, monkeypatch, scalar=False)
    scalar, _, scalar_worst = emulated(stem, tmp_path, monkeypatch, scalar=True)
    assert worst <= scalar_worst <= 1, (worst, scalar_worst)  # bit-exact where the scalar kernels are
    assert run.insns / n_macs <= BARS[stem], (run.insns, n_macs)
    assert run.insns < scalar.insns
    assert run.flash <= 1.2 * scalar.flash, (run.flash, scalar.flash)
    assert run.ram <= scalar.ram, (run.ram, scalar.ram)


@pytest.mark.slow
@needs_arm
@pytest.mark.parametrize("stem", ["kws_fp32", "vww_fp32"])
def test_mlperf_float_on_the_emulated_m55(stem, tmp_path, monkeypatch):
    """The float register tiles as Helium vectors (ops/register_tile.c.j2): at least 2x fewer instructions than
    the scalar FPU's, the same outputs within the verify tolerance (onnxruntime's)."""
    run, _, worst = emulated(stem, tmp_path, monkeypatch, scalar=False)
    scalar, _, scalar_worst = emulated(stem, tmp_path, monkeypatch, scalar=True)
    assert 2 * run.insns <= scalar.insns, (run.insns, scalar.insns)
    assert worst <= max(1e-5, 2 * scalar_worst), (worst, scalar_worst)


# ---- the float register tiles as Helium vectors (ops/register_tile.c.j2, the prelude's mve_f32x4) ---------------
def float_cases() -> list:
    import test_conv
    import test_matmul
    return [c for c in test_conv.CASES + test_matmul.CASES
            if all(np.asarray(getattr(a, "data", a)).dtype == np.float32 for a in c.operands if a is not None)]


def test_float_tiles_use_helium_vectors_on_the_m55_only(tmp_path):
    from edgecc.backends.registry import backend_for
    from edgecc.compiler.pipeline import lower
    cases = float_cases()
    for target, vectors in ((TARGET, True), ("cortex-m7", False)):
        g = lower(build_graph(cases), target, passes=["memory_plan"])
        backend_for(target, "speed").emit(g, str(tmp_path / target))
        text = (tmp_path / target / "model.c").read_text()
        assert ("mve_fma_n_f32(" in text and "mve_fma_f32(" in text) == vectors, target


@pytest.mark.parametrize("flags", [STRICT_CFLAGS, STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"]],
                         ids=["strict", "sanitized"])
def test_float_tiles_on_the_host(flags):
    from kernel_cases import check
    cases = float_cases()
    got = run_cases(cases, cflags=flags, target=TARGET, optimize="speed")
    for c in cases:
        check(c, got[c.name])


@pytest.mark.slow
@needs_arm
def test_float_tiles_on_the_emulated_m55():
    from kernel_cases import check
    cases = float_cases()
    got = run_cases(cases, cflags=WARNINGS, target=TARGET, emulated=True, optimize="speed")
    for c in cases:
        check(c, got[c.name])


def test_balanced_takes_the_compact_kernel_below_2_kib_of_weights_on_the_m55():
    """The M55's compact-kernel rule (its target file: Helium's specialized kernels are half the SMLAD ones'
    code, so only layers under 2 KiB of weights are worth the shared kernel's slower loops)."""
    from test_compact import compact_layers
    t = get_target(TARGET).costs
    assert t["compact_max_weight_bytes"] == 2048 < get_target("cortex-m7").costs["compact_max_weight_bytes"]
    for stem in ("kws_int8", "ad_int8", "vww_int8"):
        took = compact_layers(stem, TARGET, "balanced")
        assert took and all(m < t["compact_max_macs"] and w < 2048 for m, w in took.values()), (stem, took)
