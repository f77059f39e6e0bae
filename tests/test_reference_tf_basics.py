"""Tests for reference/tf_basics.py: the slides' numbers, edge cases and autodiff."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from reference import tf_basics as tb

SLIDE_MAX = [[100, 184], [12, 45]]
SLIDE_AVG = [[36.5, 80], [12, 15]]  # the slide prints 36: it truncates 36.5
# Overflow, 0/0 and x/0 are errors; underflow to 0 is the right answer for exp(-2000).
NO_FLOAT_ERRORS = {"over": "raise", "divide": "raise", "invalid": "raise", "under": "ignore"}


def conv2d_loops(x, k, b=0.0):
    """The slide's formula, written as four loops."""
    out = np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))
    for u in range(out.shape[0]):
        for v in range(out.shape[1]):
            for i in range(k.shape[0]):
                for j in range(k.shape[1]):
                    out[u, v] += x[i + u, j + v] * k[i, j]
            out[u, v] += b
    return out


def conv2d_windows(x, k, b=0.0):
    """The same, vectorised over sliding windows."""
    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape)
    return np.einsum("uvij,ij->uv", windows, k) + b


# ---- activations ----------------------------------------------------------------------------

def test_sigmoid_values_and_symmetry():
    x = np.linspace(-8, 8, 17)
    np.testing.assert_allclose(tb.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(tb.sigmoid(x) + tb.sigmoid(-x), 1.0, rtol=1e-12)
    assert tb.sigmoid(np.array(0.0)) == 0.5


def test_sigmoid_is_stable_for_huge_inputs():
    with np.errstate(**NO_FLOAT_ERRORS), warnings.catch_warnings():
        warnings.simplefilter("error")
        s = tb.sigmoid(np.array([-1000.0, -50.0, 50.0, 1000.0]))
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, 1.9287498479639178e-22, 1.0, 1.0], rtol=1e-12)


def test_relu_and_tanh():
    x = np.array([[-2.0, -0.0, 0.0, 3.5]])
    np.testing.assert_array_equal(tb.relu(x), [[0.0, 0.0, 0.0, 3.5]])
    assert tb.relu(x).shape == x.shape
    y = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(tb.tanh(y), (np.exp(y) - np.exp(-y)) / (np.exp(y) + np.exp(-y)),
                               rtol=1e-12)
    np.testing.assert_allclose(tb.tanh(np.array([-1000.0, 1000.0])), [-1.0, 1.0])


def test_softmax_matches_the_formula_on_small_logits():
    x = np.random.default_rng(0).normal(size=(4, 6))
    expected = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(tb.softmax(x), expected, rtol=1e-12)
    np.testing.assert_allclose(tb.softmax(x, axis=0),
                               np.exp(x) / np.exp(x).sum(axis=0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(tb.softmax(x[0]), expected[0], rtol=1e-12)  # 1-D input


def test_softmax_is_stable_for_logits_of_1000():
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -999.0]])
    with np.errstate(**NO_FLOAT_ERRORS), warnings.catch_warnings():
        warnings.simplefilter("error")
        s = tb.softmax(x)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s[0], [1.0, 0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(s[1], [1 / 3] * 3, rtol=1e-12)
    np.testing.assert_allclose(s[2], tb.softmax(np.array([0.0, 0.0, 1.0])), rtol=1e-12)


# ---- pooling --------------------------------------------------------------------------------

def test_max_pooling_gives_the_slides_numbers():
    np.testing.assert_array_equal(tb.max_pool2d(tb.SLIDE_MAX_POOL_INPUT), SLIDE_MAX)
    np.testing.assert_array_equal(tb.max_pool2d(tb.SLIDE_MAX_POOL_INPUT.astype(int)), SLIDE_MAX)


def test_average_pooling_gives_the_slides_numbers():
    out = tb.avg_pool2d(tb.SLIDE_AVG_POOL_INPUT)
    np.testing.assert_allclose(out, SLIDE_AVG)
    assert np.array_equal(np.trunc(out), [[36, 80], [12, 15]])  # what the slide prints


def test_pooling_an_odd_size_drops_the_last_row_and_column():
    x = np.arange(25, dtype=np.float64).reshape(5, 5)
    np.testing.assert_array_equal(tb.max_pool2d(x, 2, 2), [[6, 8], [16, 18]])
    np.testing.assert_allclose(tb.avg_pool2d(x, 2, 2), [[3, 5], [13, 15]])


def test_overlapping_pool_3_stride_1():
    x = np.random.default_rng(1).normal(size=(5, 5))
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3))
    assert tb.max_pool2d(x, pool_size=3, stride=1).shape == (3, 3)
    np.testing.assert_allclose(tb.max_pool2d(x, pool_size=3, stride=1), windows.max(axis=(2, 3)))
    np.testing.assert_allclose(tb.avg_pool2d(x, pool_size=3, stride=1),
                               windows.mean(axis=(2, 3)), rtol=1e-12)


def test_pooling_non_square_input_matches_keras():
    x = np.random.default_rng(2).normal(size=(7, 6)).astype(np.float32)
    for pool, stride in [(2, 2), (3, 2), (2, 1)]:
        t = tf.constant(x[None, :, :, None])
        tf_max = tf.nn.max_pool2d(t, pool, stride, "VALID").numpy()[0, :, :, 0]
        tf_avg = tf.nn.avg_pool2d(t, pool, stride, "VALID").numpy()[0, :, :, 0]
        np.testing.assert_allclose(tb.max_pool2d(x, pool, stride), tf_max, rtol=1e-6)
        np.testing.assert_allclose(tb.avg_pool2d(x, pool, stride), tf_avg, rtol=1e-5)


# ---- convolution ----------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,k_shape", [((5, 5), (3, 3)), ((6, 7), (2, 3)), ((4, 4), (4, 4)),
                                             ((3, 5), (1, 1))])
def test_conv2d_matches_the_slides_formula(x_shape, k_shape):
    rng = np.random.default_rng(sum(x_shape) + sum(k_shape))
    x, k = rng.normal(size=x_shape), rng.normal(size=k_shape)
    out = tb.conv2d(x, k, bias=0.25)
    assert out.shape == (x_shape[0] - k_shape[0] + 1, x_shape[1] - k_shape[1] + 1)
    np.testing.assert_allclose(out, conv2d_loops(x, k, 0.25), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, conv2d_windows(x, k, 0.25), rtol=1e-12, atol=1e-12)


def test_conv2d_is_cross_correlation_like_keras():
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    k = np.array([[1.0, 0.0], [0.0, -1.0]])  # not symmetric: a flipped kernel gives other numbers
    np.testing.assert_allclose(tb.conv2d(x, k), np.full((3, 3), -5.0))
    tf_out = tf.nn.conv2d(x[None, :, :, None], k[:, :, None, None], 1, "VALID")
    np.testing.assert_allclose(tb.conv2d(x, k), tf_out.numpy()[0, :, :, 0])
    np.testing.assert_allclose(tb.conv2d(x, k), conv2d_loops(x, k))
    assert tb.conv2d(x, k).dtype.kind == "f"


# ---- autodiff -------------------------------------------------------------------------------

def test_tf_gradient_of_a_scalar_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = tb.tf_gradient(lambda t: tf.reduce_sum(t**2), x)
    assert isinstance(grad, np.ndarray) and grad.shape == x.shape
    np.testing.assert_allclose(grad, 2 * x)
    np.testing.assert_allclose(tb.tf_gradient(lambda t: tf.reduce_sum(tf.sin(t) * tf.exp(t)), x),
                               np.exp(x) * (np.sin(x) + np.cos(x)), rtol=1e-6)


def test_tf_gradient_sums_a_non_scalar_output():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tb.tf_gradient(lambda t: t**3, x), 3 * x**2)
    np.testing.assert_allclose(tb.tf_gradient(tf.sigmoid, x),
                               tb.sigmoid(x) * (1 - tb.sigmoid(x)), rtol=1e-6)
    np.testing.assert_allclose(tb.tf_gradient(lambda t: tf.nn.softmax(t), x), 0.0, atol=1e-7)


def test_tf_gradient_of_scalar_int_and_unconnected_inputs():
    assert float(tb.tf_gradient(lambda t: t * t * t, 2.0)) == pytest.approx(12.0)
    np.testing.assert_allclose(tb.tf_gradient(lambda t: t**2, np.array([1, 2])), [2.0, 4.0])
    grad = tb.tf_gradient(lambda t: tf.constant(3.0, dtype=t.dtype), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.0])
    assert grad.dtype.kind == "f"


def test_fit_linear_recovers_the_line():
    x, y = tb.synthetic_line(n=200, w=-1.5, b=0.5, noise=0.0, seed=3)
    w, b = tb.fit_linear(x, y)
    assert isinstance(w, float) and isinstance(b, float)
    assert w == pytest.approx(-1.5, abs=1e-2)
    assert b == pytest.approx(0.5, abs=1e-2)


def test_fit_linear_with_noise_matches_least_squares():
    x, y = tb.synthetic_line(seed=4)
    w, b = tb.fit_linear(x, y, epochs=300, learning_rate=0.2)
    w_ls, b_ls = np.polyfit(x.astype(np.float64), y.astype(np.float64), 1)
    assert w == pytest.approx(w_ls, abs=1e-3)
    assert b == pytest.approx(b_ls, abs=1e-3)


def test_fit_linear_takes_epochs_steps():
    x, y = tb.synthetic_line(noise=0.0)
    assert tb.fit_linear(x, y, epochs=0) == (0.0, 0.0)
    w1, _ = tb.fit_linear(x, y, epochs=1, learning_rate=0.1)
    # One step from w = b = 0: w = -lr * dMSE/dw = lr * 2 * mean(x * y).
    assert w1 == pytest.approx(0.1 * 2 * np.mean(x.astype(np.float64) * y), rel=1e-5)


# ---- the demonstration ----------------------------------------------------------------------

def test_run_lecture_returns_epochs_and_no_accuracy():
    assert tb.run_lecture(quick=True) == (tb.QUICK_FIT_EPOCHS, None)


def test_main_prints_the_slide_examples(capsys):
    tb.main(["--quick"])
    out = capsys.readouterr().out
    assert "36.5" in out and "184" in out and "fit_linear" in out
