"""Post-training int8 quantization: what the passes `calibrate`, `quantize_int8` and
`quantization_report` share, and the options the driver hands them.

    data.py      the calibration .npz: one array per model input, N samples stacked, checked
    trace.py     run a graph sample by sample with the IR interpreter, keeping every value
    ranges.py    per-tensor range estimators: min/max, percentile, entropy (KL divergence)
    scheme.py    the TFLite int8 scheme: activation, weight (per channel) and bias parameters
    plan.py      which parameters each tensor of a graph gets (moves share, clamps lend their range)
    weights4.py  4-bit weights (--weights int4): steps and codes chosen by the layer's output error
    mixed.py     --weights auto: 4-bit or int8 weights per layer, to fit the flash budget
    report.py    the quantization report as text

The flow (compiler/pipeline.py inserts the passes after `fuse`, so conv + bias + relu are one op
when their ranges are measured):

    float graph --calibrate--> graph.meta["calibration"] (a range per float tensor)
                --quantize_int8--> quantized types, int8 weights, int32 biases, float islands
                --quantization_report--> graph.meta["quantization"] (per-layer SQNR, ...)

The driver takes a `Quantization` (what the user asked for); its `pass_options(graph)` is what the
passes read from PassContext.options.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

METHODS = ("minmax", "percentile", "entropy")
# Measured on the digits CNN of tests/models (bench/quantize.py, test images through the C): minmax
# 39.59 dB end-to-end, percentile 99.99 39.58 (99.999: the same cut as minmax on 200 samples, 99.9:
# 37.4), entropy 31.5 (KL clips the conv outputs hard); all three at 97.2 % accuracy (float: 97.5 %).
# minmax wins; percentile stays one flag away for models whose activations have outliers.
DEFAULT_METHOD = "minmax"
DEFAULT_PERCENTILE = 99.99
IO_KINDS = ("float", "int8")
WEIGHTS = ("int8", "int4", "auto")  # the weights' precision: everywhere, or chosen per layer (mixed.py)


@dataclass
class Quantization:
    """What `edgecc --quantize int8` was asked for. `calibration` is the path of the .npz or the
    arrays themselves ({input name: [N, *input_shape]}); `keep_float` names layers (op names or
    their results' names) to leave in float; `weights` is the conv and fully connected layers'
    weight precision (WEIGHTS); `progress` is a callable(label, done, total) or None."""

    calibration: Union[str, os.PathLike, dict]
    method: str = DEFAULT_METHOD
    percentile: float = DEFAULT_PERCENTILE
    io: str = "float"
    keep_float: tuple = ()
    weights: str = "int8"
    progress: Optional[Callable] = field(default=None, repr=False)

    def pass_options(self, graph) -> dict:
        """The passes' options, with the calibration data read and checked against `graph`'s inputs."""
        from edgecc.ir.errors import EdgeccError

        from .data import check_arrays, load_calibration

        if self.method not in METHODS:
            raise EdgeccError(f"unknown calibration method '{self.method}' (known: {', '.join(METHODS)})")
        if self.io not in IO_KINDS:
            raise EdgeccError(f"unknown interface '{self.io}' (known: {', '.join(IO_KINDS)})")
        if self.weights not in WEIGHTS:
            raise EdgeccError(f"unknown weight precision '{self.weights}' (known: {', '.join(WEIGHTS)})")
        if not 0.0 < float(self.percentile) <= 100.0:
            raise EdgeccError(f"percentile {self.percentile} is not in (0, 100]")
        data = self.calibration
        data = check_arrays("calibration data", data, graph) if isinstance(data, dict) \
            else load_calibration(data, graph)
        return {"calibration": data, "calibration_method": self.method, "percentile": float(self.percentile),
                "io": self.io, "keep_float": tuple(self.keep_float), "weights": self.weights,
                "progress": self.progress}
