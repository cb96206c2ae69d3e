"""Calibration data, range estimators and the int8 scheme's parameters."""
from __future__ import annotations

import numpy as np
import pytest

from edgecc.compiler.quantization import Quantization
from edgecc.compiler.quantization.data import load_calibration
from edgecc.compiler.quantization.ranges import Histogram, MinMax, kl_threshold
from edgecc.compiler.quantization.scheme import activation_quant, asymmetric_tensor, weights_and_bias
from edgecc.ir import Graph, TensorType, Value
from edgecc.ir.errors import EdgeccError


def two_inputs() -> Graph:
    return Graph("g", [Value("image", TensorType((1, 3, 4, 4), "f32")), Value("ids", TensorType((1, 5), "i64"))], [])


def save(tmp_path, **arrays):
    path = tmp_path / "calib.npz"
    np.savez(path, **arrays)
    return path


# ---- calibration data ------------------------------------------------------------------------
def test_good_data_loads_and_float64_is_accepted(tmp_path):
    img = np.random.default_rng(0).random((7, 1, 3, 4, 4))  # float64
    ids = np.zeros((7, 1, 5), np.int64)
    data = load_calibration(save(tmp_path, image=img, ids=ids), two_inputs())
    assert data["image"].dtype == np.float32 and data["image"].shape == (7, 1, 3, 4, 4)
    assert data["ids"].dtype == np.int64


def test_samples_along_the_batch_axis_of_a_batch_1_input(tmp_path):
    """[N, *shape[1:]] for an input of batch 1 (N images as one batch of N) is the same data as [N, *shape]."""
    img = np.random.default_rng(1).random((6, 3, 4, 4)).astype(np.float32)
    ids = np.arange(30).reshape(6, 5)
    data = load_calibration(save(tmp_path, image=img, ids=ids), two_inputs())
    assert data["image"].shape == (6, 1, 3, 4, 4) and data["ids"].shape == (6, 1, 5)
    np.testing.assert_array_equal(data["image"][:, 0], img)
    np.testing.assert_array_equal(data["ids"][:, 0], ids)


@pytest.mark.parametrize("arrays, message", [
    (dict(image=np.zeros((2, 4, 4, 3), np.float32), ids=np.zeros((2, 1, 5), np.int64)),
     r"'image' has shape \[2,4,4,3\], expected \[N,1,3,4,4\] or \[N,3,4,4\]"),
    (dict(image=np.zeros((2, 1, 1, 3, 4, 4), np.float32), ids=np.zeros((2, 1, 5), np.int64)),
     r"'image' has shape \[2,1,1,3,4,4\], expected \[N,1,3,4,4\] or \[N,3,4,4\]"),
    (dict(image=np.zeros((2, 1, 3, 4, 4), np.uint8), ids=np.zeros((2, 1, 5), np.int64)),
     "'image' is uint8, input 'image' is float32"),
    (dict(image=np.zeros((2, 1, 3, 4, 4), np.float32), ids=np.zeros((2, 1, 5), np.int32)),
     "'ids' is int32, input 'ids' is int64"),
    (dict(image=np.zeros((2, 1, 3, 4, 4), np.float32)), "no calibration array for input 'ids'"),
    (dict(image=np.zeros((2, 1, 3, 4, 4), np.float32), ids=np.zeros((2, 1, 5), np.int64),
          label=np.zeros(2)), "'label' names no input of the model"),
    (dict(image=np.zeros((2, 1, 3, 4, 4), np.float32), ids=np.zeros((3, 1, 5), np.int64)),
     "different numbers of samples"),
    (dict(image=np.zeros((0, 1, 3, 4, 4), np.float32), ids=np.zeros((0, 1, 5), np.int64)), "no samples"),
    (dict(image=np.full((2, 1, 3, 4, 4), np.nan, np.float32), ids=np.zeros((2, 1, 5), np.int64)), "NaN"),
])
def test_bad_data_is_one_clear_line(tmp_path, arrays, message):
    with pytest.raises(EdgeccError, match=message) as e:
        load_calibration(save(tmp_path, **arrays), two_inputs())
    assert "\n" not in str(e.value) and str(e.value).startswith(str(tmp_path / "calib.npz"))


def test_bad_files(tmp_path):
    g = two_inputs()
    with pytest.raises(EdgeccError, match="no such calibration file"):
        load_calibration(tmp_path / "gone.npz", g)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(EdgeccError, match="not a single .npy array"):
        load_calibration(tmp_path / "one.npy", g)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(EdgeccError, match="not an .npz file"):
        load_calibration(tmp_path / "text.npz", g)


def test_options_are_checked():
    g = two_inputs()
    arrays = {"image": np.zeros((1, 1, 3, 4, 4), np.float32), "ids": np.zeros((1, 1, 5), np.int64)}
    with pytest.raises(EdgeccError, match="unknown calibration method 'kl'"):
        Quantization(arrays, method="kl").pass_options(g)
    with pytest.raises(EdgeccError, match="unknown interface 'uint8'"):
        Quantization(arrays, io="uint8").pass_options(g)
    opts = Quantization(arrays, method="entropy", io="int8", keep_float=("a",)).pass_options(g)
    assert opts["calibration_method"] == "entropy" and opts["io"] == "int8" and opts["keep_float"] == ("a",)


# ---- ranges ----------------------------------------------------------------------------------
def test_minmax_runs_over_batches():
    m = MinMax()
    m.add("t", np.array([0.5, 2.0]))
    m.add("t", np.array([-1.0, 1.0]))
    assert m.range("t") == (-1.0, 2.0)


def test_percentile_clips_the_outliers():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(100_000), [50.0]])  # one outlier far out
    h = Histogram(0.0, 50.0, absolute=False)
    h.add(x)
    lo, hi = h.percentile_range(99.9)
    assert lo == 0.0 and hi == pytest.approx(np.quantile(x, 0.999), abs=50.0 / 2048 + 1e-9)
    s = rng.standard_normal(200_000)
    h = Histogram(float(s.min()), float(s.max()), absolute=False)
    h.add(s)
    lo, hi = h.percentile_range(99.0)  # half of the 1 % below, half above
    assert lo == pytest.approx(np.quantile(s, 0.005), abs=0.01) and hi == pytest.approx(np.quantile(s, 0.995),
                                                                                       abs=0.01)


def test_entropy_keeps_a_flat_distribution_and_clips_a_long_tail():
    assert kl_threshold(np.full(2048, 10), 255) >= 2046  # nothing to gain by clipping uniform data
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal(200_000)) ** 3  # heavy tail
    h = Histogram(0.0, float(x.max()), absolute=True)
    h.add(x)
    lo, hi = h.entropy_range()
    assert lo == 0.0 and np.quantile(x, 0.9) < hi < 0.5 * x.max()


# ---- the scheme ------------------------------------------------------------------------------
def test_activation_parameters_hold_zero_and_the_range():
    q = activation_quant(0.0, 1.0)
    assert q.zero_point == (-128,) and q.scale[0] == pytest.approx(1 / 255)
    q = activation_quant(-2.0, 6.0)
    s, z = q.scale[0], q.zero_point[0]
    assert s * (-128 - z) == pytest.approx(-2.0, abs=s) and s * (127 - z) == pytest.approx(6.0, abs=s)
    assert activation_quant(0.5, 3.0).zero_point == (-128,)  # widened to hold 0
    assert activation_quant(0.0, 0.0).scale[0] > 0
    assert activation_quant(-1.0, 1.0).scale[0] == np.float32(activation_quant(-1.0, 1.0).scale[0])


def test_weights_symmetric_per_channel_and_int32_bias():
    w = np.array([[[1.0, -0.5]], [[0.02, 0.01]]])  # [2, 1, 2]
    codes, wq, b, bq = weights_and_bias(w, np.array([0.3, -0.1]), input_scale=0.05)
    assert wq.axis == 0 and wq.zero_point == (0, 0)
    np.testing.assert_array_equal(codes[:, 0], [[127, -64], [127, 63]])  # 63.5 before the scale was rounded to float32
    assert bq.scale == pytest.approx((0.05 * 1.0 / 127, 0.05 * 0.02 / 127), rel=1e-6)
    np.testing.assert_array_equal(b, np.rint(np.array([0.3, -0.1]) / np.array(bq.scale)))
    codes, wq, b, bq = weights_and_bias(np.array([[1e-9, 0.0]]), np.array([1e4]), input_scale=1e-3)
    assert abs(int(b[0])) <= 2 ** 30  # a bias that would overflow int32 widens the weight scale


def test_asymmetric_constants():
    codes, q = asymmetric_tensor(np.array([0.0, 0.5, 1.0], np.float32))
    assert codes.dtype == np.int8 and codes[0] == -128 and codes[2] == 127 and abs(int(codes[1])) <= 1
