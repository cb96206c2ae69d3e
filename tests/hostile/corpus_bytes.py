"""Corpus kinds that break the file's bytes: truncations and seeded byte flips."""
from __future__ import annotations

from corpus_edit import Variant


def truncation(model, rng):
    """The file cut at several points, from nothing at all to one byte short. A cut between two
    fields of the model itself leaves a valid, shorter model: 16 bytes short, the MLPerf models lose
    their trailing (unused) ai.onnx.ml opset import and nothing else."""
    data = model.SerializeToString()
    cuts = {"empty": 0, "one_byte": 1, "10pct": len(data) // 10, "quarter": len(data) // 4, "half": len(data) // 2,
            "3quarters": 3 * len(data) // 4, "90pct": 9 * len(data) // 10, "minus16": len(data) - 16,
            "minus1": len(data) - 1}
    for name, cut in cuts.items():
        yield Variant(name, data[:cut], must_refuse=name != "minus16")


def byte_flip(model, rng):
    """Bytes replaced by random ones at random places: anywhere in the file, or in its first 64
    bytes (the header and the start of the graph). A flip inside a weight leaves a valid model."""
    data = model.SerializeToString()
    plans = [("anywhere1", 1, len(data))] * 3 + [("anywhere8", 8, len(data))] * 3 + \
            [("anywhere64", 64, len(data))] * 2 + [("header4", 4, 64)] * 3
    for i, (name, count, span) in enumerate(plans):
        flipped = bytearray(data)
        for pos in rng.choice(min(span, len(data)), size=count, replace=False):
            flipped[pos] ^= int(rng.integers(1, 256))
        yield Variant(f"{name}_{i}", bytes(flipped), must_refuse=False)


KINDS = {"truncation": truncation, "byte_flip": byte_flip}
