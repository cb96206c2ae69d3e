"""C identifiers from model names: only [A-Za-z0-9_], never a keyword or one of our API names,
unique in their file. Model names never reach the C source any other way."""
from __future__ import annotations

import re

C_RESERVED = set("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary bool true false NULL main errno assert offsetof memcpy memset
int8_t uint8_t int16_t uint16_t int32_t uint32_t int64_t uint64_t size_t arena""".split())
MAX_LEN = 40


def c_identifier(raw: str, prefix: str = "") -> str:
    """A readable identifier from any string: the first ';'-separated part (exporters join fused
    names with ';'), non-identifier characters as '_', at most MAX_LEN characters."""
    text = raw.split(";")[0] or raw
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    ident = re.sub(r"__+", "_", ident)[-MAX_LEN:].strip("_") or "t"
    if prefix:
        ident = prefix + ident
    elif ident[0].isdigit():
        ident = "t" + ident
    if ident.startswith("_"):  # reserved for the implementation
        ident = "t" + ident
    return ident


class Namer:
    """Hands out unique identifiers; `taken` starts with what the file already defines."""

    def __init__(self, taken=()):
        self.taken = set(C_RESERVED) | set(taken)

    def __call__(self, raw: str, prefix: str = "") -> str:
        base = c_identifier(raw, prefix)
        name, i = base, 1
        while name in self.taken or name.lower() in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name
