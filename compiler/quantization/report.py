"""The quantization report as text (what `edgecc --emit report` prints); the same figures go to
report.json under "quantization" when C is emitted (see the quantization_report pass)."""
from __future__ import annotations


def _db(row) -> str:
    if row.get("exact"):
        return "exact"
    return "-" if row.get("sqnr_db") is None else f"{row['sqnr_db']:.1f}"


def _auto_lines(auto: dict) -> list:
    """--weights auto: the budget, the flash of the choice against int8 and 4-bit everywhere, and per
    candidate layer what its 4-bit weights save and cost alone."""
    budget = f"{auto['budget']:,} bytes" if auto["budget"] else "none"
    lines = [f"auto: flash budget {budget}; estimate {auto['flash']:,} bytes (int8 weights everywhere: "
             f"{auto['flash_int8']:,}, 4-bit everywhere: {auto['flash_int4']:,}): saves "
             f"{auto['flash_int8'] - auto['flash']:,} bytes with {len(auto['four'])} of {len(auto['layers'])} "
             f"layers 4-bit"]
    width = max([len("layer")] + [len(r["layer"]) for r in auto["layers"]])
    int8 = "-" if auto.get("sqnr_db_int8") is None else f"{auto['sqnr_db_int8']:.1f}"
    lines.append(f"  {'layer'.ljust(width)}  weights  4-bit saves  SQNR with it alone 4-bit (dB; none: {int8})")
    for r in auto["layers"]:
        db = "-" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"
        lines.append(f"  {r['layer'].ljust(width)}  {('int4' if r['bits'] == 4 else 'int8'):<7}  "
                     f"{r['saves']:>11,}  {db:>29}")
    return lines


def format_report(rep: dict) -> str:
    cal = rep["calibration"]
    method = cal["method"] + (f" {cal['percentile']:g}" if cal["method"] == "percentile" else "")
    lines = [f"quantization: {rep['scheme']}",
             f"calibration: {method} on {cal['samples']} samples; interface: {rep['io']}",
             "end-to-end SQNR: " + ", ".join(f"{e['output']} {_db(e)} dB" for e in rep["end_to_end"])]
    wb = rep["weight_bytes"]
    kind = {"int4": "4-bit weights (int8 activations)", "auto": "4-bit or int8 weights per layer (auto)"}.get(
        rep.get("weights", "int8"), "int8 weights")
    lines.append(f"weights: {wb['float']} bytes float -> {wb['quantized']} bytes, {kind}")
    if rep.get("auto"):
        lines += _auto_lines(rep["auto"])
    rows = rep["layers"]
    w_name = max([len("layer")] + [len(r["name"] or r["output"]) for r in rows])
    w_op = max([len("op")] + [len(r["op"]) for r in rows])
    lines.append("")
    lines.append(f"{'layer'.ljust(w_name)}  {'op'.ljust(w_op)}  precision  SQNR (dB)")
    for r in rows:
        lines.append(f"{(r['name'] or r['output']).ljust(w_name)}  {r['op'].ljust(w_op)}  "
                     f"{r['precision'].ljust(9)}  {_db(r):>9}")
    floats = rep["float_layers"]
    lines.append("")
    if floats:
        lines.append("layers left in float:")
        lines += [f"  {f['name'] or '(unnamed)'} ({f['op']}): {f['reason']}" for f in floats]
    else:
        lines.append("layers left in float: none")
    return "\n".join(lines) + "\n"
