"""Vela (ethos-u-vela) on the original MLPerf Tiny int8 TFLite models, through backends/delegate/vela.py.

Each model is compiled for the Ethos-U55-128 in Vela's reference system (Ethos_U55_High_End_Embedded,
Shared_Sram); the command stream is checked against the driver payload format Vela writes and the
Ethos-U core driver parses (ethosu/vela/driver_actions.py, ethos-u-core-driver ethosu_driver.c): the
fourcc "COP1", an OPTIMIZER_CONFIG action (tag 0x01 and two words), NOPs (0x05) to 16-byte alignment,
a COMMAND_STREAM action (0x02) whose 24-bit length counts the register-command words that follow, the
last of which is NPU_OP_STOP (opcode 0, no payload).
"""
import struct

import pytest

from conftest import mlperf_path
from edgecc.backends.delegate.vela import VelaError, compile_partition, vela_version

pytestmark = pytest.mark.skipif(vela_version() is None,
                                reason="ethos-u-vela is not installed (pip install ethos-u-vela)")
MODELS = ["kws", "vww", "ic", "ad"]
_cache = {}


def compiled(stem):
    if stem not in _cache:
        with open(mlperf_path(f"{stem}_int8", "tflite"), "rb") as f:
            _cache[stem] = compile_partition(f.read(), "ethos-u55-128")
    return _cache[stem]


def payload_actions(cs: bytes) -> list:
    """The driver actions of a command-stream payload: [(action, words)], COMMAND_STREAM's words its commands."""
    words = struct.unpack(f"<{len(cs) // 4}I", cs)
    assert words[0] == struct.unpack("<I", b"COP1")[0]
    actions, i = [], 1
    while i < len(words):
        tag = words[i]
        action = tag & 0xFF
        if action == 0x01:  # OPTIMIZER_CONFIG: the tag, the NPU CONFIG word, the NPU ID word
            actions.append(("config", words[i + 1:i + 3]))
            i += 3
        elif action == 0x05:  # NOP
            i += 1
        elif action == 0x02:  # COMMAND_STREAM: length in the tag's high 16 bits, its high byte in bits 8-15
            length = (tag >> 16) | (((tag >> 8) & 0xFF) << 16)
            actions.append(("command_stream", words[i + 1:i + 1 + length]))
            assert (i + 1) % 4 == 0, "the register commands start 16-byte aligned"
            i += 1 + length
        else:
            raise AssertionError(f"unknown driver action {tag:#x} at word {i}")
    assert i == len(words), "the last action runs past the payload"
    return actions


@pytest.mark.parametrize("stem", MODELS)
def test_mlperf_model_compiles(stem):
    p = compiled(stem)
    if stem != "ad":  # the brief's requirement; the autoencoder (fully connected layers) maps whole too
        assert p.cpu_operators == 0, p.log
    assert p.npu_operators > 0 and p.cycles > 0 and p.sram_bytes > 0 and p.offchip_flash_bytes > 0, p.log
    assert p.accelerator == "ethos-u55-128" and p.system_config == "Ethos_U55_High_End_Embedded"
    assert p.memory_mode == "Shared_Sram" and p.clock_hz == 500e6
    assert "Ethos_U55_128" in p.log and f"NPU operators = {p.npu_operators}" in p.log

    cs = p.command_stream
    assert cs and cs[:4] == b"COP1" and len(cs) % 4 == 0
    actions = payload_actions(cs)
    assert [a for a, _ in actions] == ["config", "command_stream"]
    commands = actions[1][1]
    assert len(commands) > 0
    last = commands[-1]
    assert last & 0x3FF == 0 and (last >> 14) & 3 == 0, f"the command stream ends with {last:#x}, not NPU_OP_STOP"

    # the driver's base addresses: read_only, scratch, the fast scratch (the scratch on the U55), the
    # input feature maps, the output feature maps
    kinds = [r.points_at.split(":")[0] for r in p.regions]
    assert kinds[:3] == ["read_only", "scratch", "scratch"] and p.scratch_fast_bytes == 0
    assert kinds[3:] == ["input", "output"], p.regions
    assert [r.index for r in p.regions] == list(range(len(p.regions))) and len(p.regions) <= 8
    assert p.regions[0].size == len(p.read_only) == p.offchip_flash_bytes  # Shared_Sram: weights in flash
    assert p.regions[1].size == p.scratch_bytes == p.sram_bytes
    for r in p.regions[3:]:
        assert r.scratch_offset is not None and r.scratch_offset % 16 == 0
        assert r.scratch_offset + r.size <= p.scratch_bytes


def test_malformed_tflite_is_one_line_error(tmp_path):
    with pytest.raises(VelaError) as e:
        compile_partition(b"\x00not a flatbuffer\x00" * 64, workdir=str(tmp_path))
    message = str(e.value)
    assert "\n" not in message and message.startswith("Vela failed: ") and len(message) > len("Vela failed: ")
    assert "Traceback" not in message


def test_truncated_tflite_is_one_line_error():
    with open(mlperf_path("kws_int8", "tflite"), "rb") as f:
        data = f.read()
    with pytest.raises(VelaError) as e:
        compile_partition(data[:len(data) // 2])
    assert "\n" not in str(e.value) and str(e.value).startswith("Vela failed: "), str(e.value)


def test_float_model_runs_nothing_on_the_npu():
    with open(mlperf_path("kws_fp32", "tflite"), "rb") as f:
        data = f.read()
    with pytest.raises(VelaError, match="no operator on the NPU .*Float32") as e:
        compile_partition(data)
    assert "\n" not in str(e.value)


def test_unknown_system_config_is_vela_reason():
    with open(mlperf_path("kws_int8", "tflite"), "rb") as f:
        data = f.read()
    with pytest.raises(VelaError, match="System_Config.Nope not found") as e:
        compile_partition(data, system_config="Nope")
    assert "\n" not in str(e.value)
