"""The quantization report as text (what `edgecc --emit report` prints); the same figures go to
report.json under "quantization" when C is emitted (see the quantization_report pass)."""
from __future__ import annotations


def _db(row) -> str:
    if row.get("exact"):
        return "exact"
    return "-" if row.get("sqnr_db") is None else f"{row['sqnr_db']:.1f}"


def format_report(rep: dict) -> str:
    cal = rep["calibration"]
    method = cal["method"] + (f" {cal['percentile']:g}" if cal["method"] == "percentile" else "")
    lines = [f"quantization: {rep['scheme']}",
             f"calibration: {method} on {cal['samples']} samples; interface: {rep['io']}",
             "end-to-end SQNR: " + ", ".join(f"{e['output']} {_db(e)} dB" for e in rep["end_to_end"])]
    wb = rep["weight_bytes"]
    lines.append(f"weights: {wb['float']} bytes float -> {wb['quantized']} bytes")
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
