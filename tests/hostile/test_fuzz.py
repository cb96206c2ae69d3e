"""Fuzzing the two readers of user files with hypothesis: the textual-IR parser and the ONNX frontend.

The bar for both: a damaged file is refused with an EdgeccError whose message is one line (what the
command line prints before exiting 2), or it is read; nothing else may escape. The parser has the
stronger bar of a text format: what it accepts passes the verifier, and printing it gives a text that
parses back to the same text.

The seeds are real graphs: the MLPerf Tiny keyword-spotting model as imported, the same lowered for the
Edge TPU (a `partition` op with its nested graph, channels-last layouts) and a zoo CNN lowered for the
Cortex-M7 under a RAM budget that tiles it (a `tiled` op). The mutations (ir_mutations.py,
onnx_mutations.py) edit characters, tokens, lines, numbers, shapes, element types and constant data
of the text, and bytes and protobuf fields of the models. Runs are derandomized (the same examples
every run) and bounded; a failure prints the mutations that made its input (hypothesis's notes), and
shrinking is off to keep a failing run short: the notes are enough to redo it.
"""
import copy
import os
import sys
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

from conftest import mlperf_path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ir_mutations  # noqa: E402
import onnx_mutations  # noqa: E402

pytestmark = pytest.mark.slow


class Seeds(dict):
    """Seed name -> text or bytes; its repr (what hypothesis prints with a failing example) only names them."""

    def __repr__(self):
        return f"Seeds({', '.join(self)})"


FUZZ = dict(derandomize=True, database=None, deadline=timedelta(seconds=10), phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- the textual IR --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ir_seeds(zoo):
    from edgecc.compiler.driver import load
    from edgecc.compiler.pipeline import lower
    from edgecc.ir import print_graph

    kws = load(mlperf_path("kws_int8"))
    seeds = Seeds({
        "kws_int8": print_graph(kws),
        "kws_int8 for edgetpu": print_graph(lower(copy.deepcopy(kws), "edgetpu")),
        "cnn_nchw_qdq for cortex-m7, 20000 bytes": print_graph(lower(load(zoo["cnn_nchw_qdq"]), "cortex-m7",
                                                                     options={"sram": 20000})),
    })
    # the nested-graph forms are what the seeds are chosen for
    assert " = partition(" in seeds["kws_int8 for edgetpu"]
    assert " = tiled(" in seeds["cnn_nchw_qdq for cortex-m7, 20000 bytes"]
    return seeds


def check_ir_text(text: str) -> str:
    """Parse `text`: refused in one line, or verified and printing back to a text that parses to itself."""
    from edgecc.ir import EdgeccError, parse, print_graph, verify

    try:
        graph = parse(text, "fuzz.edgeir")
    except EdgeccError as e:
        assert str(e) and "\n" not in str(e), f"a message of more than one line: {str(e)!r}"
        return "refused"
    verify(graph)
    printed = print_graph(graph)
    assert print_graph(parse(printed, "printed.edgeir")) == printed
    return "read"


def test_seeds_read_back(ir_seeds):
    for text in ir_seeds.values():
        assert check_ir_text(text) == "read"


@settings(max_examples=400, **FUZZ)
@given(data=st.data())
def test_parser_on_mutated_text(ir_seeds, data):
    seed = data.draw(st.sampled_from(sorted(ir_seeds)), label="seed")
    text, done = ir_mutations.mutate(ir_seeds[seed], data.draw, data.draw(st.integers(1, 3), label="steps"))
    note(f"{seed}: " + "; ".join(done))
    event(check_ir_text(text))


# ---- the ONNX frontend -----------------------------------------------------------------------
ONNX_ZOO = ["cnn_nchw_fp32", "transformer_fp32", "conv1d_qdq"]


@pytest.fixture(scope="module")
def onnx_seeds(zoo):
    paths = {"kws_int8": mlperf_path("kws_int8"), **{name: str(zoo[name]) for name in ONNX_ZOO}}
    return Seeds({name: open(path, "rb").read() for name, path in paths.items()})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_onnx")


class FrontendCrash(Exception):
    """Loading a model raised something other than an EdgeccError: a bug of the frontend."""


def check_onnx_file(path: str) -> str:
    """Load `path`: refused in one line, or read into a graph."""
    from edgecc.compiler.driver import load
    from edgecc.ir import EdgeccError, Graph

    try:
        graph = load(path)
    except EdgeccError as e:
        assert str(e) and "\n" not in str(e), f"a message of more than one line: {str(e)!r}"
        return "refused"
    except Exception as e:
        raise FrontendCrash(f"{type(e).__name__}: {e}") from e
    assert isinstance(graph, Graph)
    return "read"


def test_onnx_seeds_load(onnx_seeds, scratch):
    for name, data in onnx_seeds.items():
        path = scratch / f"{name}.onnx"
        path.write_bytes(data)
        assert check_onnx_file(str(path)) == "read"


@settings(max_examples=1000, **FUZZ)
@given(data=st.data())
def test_frontend_on_mutated_models(onnx_seeds, scratch, data):
    seed = data.draw(st.sampled_from(sorted(onnx_seeds)), label="seed")
    mutation = data.draw(st.sampled_from(onnx_mutations.MUTATIONS), label="mutation")
    blob, done = mutation(onnx_seeds[seed], data.draw)
    note(f"{seed}.onnx: {done}")
    path = scratch / "mutated.onnx"
    path.write_bytes(blob)
    event(check_onnx_file(str(path)))
