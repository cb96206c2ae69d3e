"""Mutations of textual IR for the parser fuzzer (test_fuzz.py): the ways a hand-edited or corrupted
.edgeir file goes wrong.

Each mutation takes the text as a list of lines and hypothesis's `draw`, changes the lines in place and
returns a one-line description of what it did (hypothesis prints it with a failing example). Edits aim
at the part of a line a reader can get wrong (names, types, attributes, the syntax around them), not
at the hex data of constants, which would take most of the characters and tell little; that data is
cut or lengthened by a mutation of its own.
"""
from __future__ import annotations

import re

from hypothesis import strategies as st

# the grammar's punctuation and token starts, and characters that break lines or strings
ALPHABET = list('{}()[]<>,:=%@"\\_-.x0123456789 \t\nqaz/$') + ["\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028",
                                                                "\u00e9", "\U0001f600"]
TOKEN = re.compile(r'%"(?:[^"\\\n]|\\.)*"|@"(?:[^"\\\n]|\\.)*"|"(?:[^"\\\n]|\\.)*"|[%@]?[A-Za-z0-9_.$-]+|\S')
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")
TYPE = re.compile(r"tensor<((?:[0-9]+x)*)([a-z][a-z0-9]*)")
LIST = re.compile(r"\[[^\[\]]*\]")
NUMBERS = ["0", "-1", "1", "2", "-0", "7", "65536", "2147483648", "4294967296", "9223372036854775808",
           "99999999999999999999", "9" * 400, "1e400", "-1e400", "nan", "inf", "-inf", "0.0", "1.5", "-2.5",
           "1e-320"]
DIMS = ["0", "1", "2", "3", "64", "65536", "2147483648", "99999999999999999999"]
DTYPES = ["f32", "i8", "i4", "u8", "i16", "i32", "i64", "i1", "f64", "bf16", "x", "i", "nan"]
LISTS = ["[]", "[0]", "[1]", "[-1]", "[1, 1]", "[0, 0, 0, 0]", "[1, 2, 3, 4, 5, 6, 7, 8]", '["a"]', "[1.5]",
         "[9223372036854775808]", "[2, 2]", "[0, 2, 3, 1]"]


def _head_end(line: str) -> int:
    """Where the editable part of a line ends: before a constant's hex data."""
    cut = line.find(' hex"')
    return len(line) if cut < 0 else cut + len(' hex"')


def _pick(draw, items, label):
    return draw(st.sampled_from(items), label=label)


def _line(draw, lines) -> int:
    return draw(st.integers(0, len(lines) - 1), label="line")


def edit_character(lines, draw) -> str:
    i = _line(draw, lines)
    line = lines[i]
    at = draw(st.integers(0, _head_end(line)), label="column")
    how = _pick(draw, ["delete", "insert", "replace"], "how")
    ch = "" if how == "delete" else _pick(draw, ALPHABET, "character")
    lines[i] = line[:at] + ch + line[at + (how != "insert"):]
    return f"line {i + 1} column {at + 1}: {how} {ch!r}"


def edit_token(lines, draw) -> str:
    i = _line(draw, lines)
    tokens = list(TOKEN.finditer(lines[i][:_head_end(lines[i])]))
    if not tokens:
        return "no token"
    t = _pick(draw, tokens, "token")
    how = _pick(draw, ["delete", "duplicate", "replace"], "how")
    if how == "delete":
        new = ""
    elif how == "duplicate":
        new = t.group() + " " + t.group()
    else:  # by a token of another line: a name, a type, an op kind, punctuation
        j = _line(draw, lines)
        others = TOKEN.findall(lines[j][:_head_end(lines[j])]) or [""]
        new = _pick(draw, others[:60], "other token")
    lines[i] = lines[i][:t.start()] + new + lines[i][t.end():]
    return f"line {i + 1}: {how} token {t.group()[:40]!r}" + (f" by {new[:40]!r}" if how == "replace" else "")


def edit_lines(lines, draw) -> str:
    i = _line(draw, lines)
    how = _pick(draw, ["delete", "duplicate", "swap"], "how")
    if how == "delete" and len(lines) > 1:
        del lines[i]
    elif how == "duplicate":
        lines.insert(i, lines[i])
    else:
        j = _line(draw, lines)
        lines[i], lines[j] = lines[j], lines[i]
        return f"swap lines {i + 1} and {j + 1}"
    return f"{how} line {i + 1}"


def _replace_match(lines, draw, pattern, choices, what: str) -> str:
    """One match of `pattern` in the editable part of a line replaced by one of `choices`."""
    i = _line(draw, lines)
    found = list(pattern.finditer(lines[i][:_head_end(lines[i])]))
    if not found:
        return f"no {what}"
    t = _pick(draw, found, what)
    new = _pick(draw, choices, f"new {what}")
    lines[i] = lines[i][:t.start()] + new + lines[i][t.end():]
    return f"line {i + 1}: {what} {t.group()[:40]} -> {new[:40]}"


def edit_number(lines, draw) -> str:
    return _replace_match(lines, draw, NUMBER, NUMBERS, "number")


def edit_type(lines, draw) -> str:
    """A tensor type's shape (a dimension changed, dropped or added) or element type."""
    i = _line(draw, lines)
    found = list(TYPE.finditer(lines[i]))
    if not found:
        return "no type"
    t = _pick(draw, found, "type")
    dims = t.group(1).split("x")[:-1]
    dtype = t.group(2)
    how = _pick(draw, ["dimension", "drop", "add", "dtype"], "how")
    if how == "dimension" and dims:
        dims[draw(st.integers(0, len(dims) - 1), label="axis")] = _pick(draw, DIMS, "dimension")
    elif how == "drop" and dims:
        del dims[draw(st.integers(0, len(dims) - 1), label="axis")]
    elif how == "add":
        dims.insert(draw(st.integers(0, len(dims)), label="axis"), _pick(draw, DIMS[:4], "dimension"))
    elif how == "dtype":
        dtype = _pick(draw, DTYPES, "dtype")
    new = "".join(d + "x" for d in dims) + dtype
    lines[i] = lines[i][:t.start(1)] + new + lines[i][t.end(2):]
    return f"line {i + 1}: type {t.group(1)}{t.group(2)} -> {new[:60]}"


def edit_list(lines, draw) -> str:
    """An attribute list or a per-axis quantization list replaced."""
    return _replace_match(lines, draw, LIST, LISTS, "list")


def edit_hex(lines, draw) -> str:
    consts = [i for i, line in enumerate(lines) if ' hex"' in line]
    if not consts:
        return "no constant"
    i = _pick(draw, consts, "constant line")
    end = lines[i].rfind('"')
    how = _pick(draw, ["one digit short", "one byte short", "one digit more", "not hex"], "how")
    line = lines[i]
    lines[i] = {"one digit short": line[:end - 1] + line[end:], "one byte short": line[:end - 2] + line[end:],
                "one digit more": line[:end] + "0" + line[end:], "not hex": line[:end - 1] + "g" + line[end:]}[how]
    return f"line {i + 1}: constant data {how}"


MUTATIONS = [edit_character, edit_token, edit_lines, edit_number, edit_type, edit_list, edit_hex]


def mutate(text: str, draw, steps: int) -> tuple[str, list]:
    """`text` after `steps` mutations, and what each did."""
    lines = text.split("\n")
    done = []
    for _ in range(steps):
        mutation = _pick(draw, MUTATIONS, "mutation")
        done.append(f"{mutation.__name__}: {mutation(lines, draw)}")
    return "\n".join(lines), done
