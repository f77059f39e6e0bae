"""Tests for grader.checks.gradients: the numerical gradient checker itself."""

import dataclasses

import numpy as np
import pytest

from grader.checks import gradients
from grader.checks.gradients import (
    FLAT_FORWARD,
    KINK_MARGIN,
    MAX_RELATIVE_ERROR,
    ZERO_BACKWARD,
    GradientReport,
    away_from_kinks,
    check_gradient,
    failure_message,
    numerical_gradient,
    numerical_vjp,
    relative_error,
)


def test_constants_are_the_design_values():
    assert gradients.STEP == 1e-5
    assert MAX_RELATIVE_ERROR == 1e-7
    assert gradients.STEP < KINK_MARGIN < 1e-1


def test_numerical_gradient_of_sum_of_squares_is_2x():
    x = np.random.default_rng(0).normal(size=(3, 4))
    grad = numerical_gradient(lambda v: np.sum(v**2), x)
    assert grad.dtype == np.float64
    assert grad.shape == x.shape
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8, atol=1e-10)
    assert relative_error(2 * x, grad) < MAX_RELATIVE_ERROR


def test_numerical_gradient_leaves_x_unchanged_and_accepts_float32_and_ints():
    x = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    before = x.copy()
    grad = numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    np.testing.assert_array_equal(x, before)
    assert grad.dtype == np.float64  # evaluated in float64 even for a float32 input
    np.testing.assert_allclose(grad, np.cos(x.astype(np.float64)), rtol=1e-8)
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**3), np.array([2])),
                               [12.0], rtol=1e-8)


def test_numerical_vjp_of_a_linear_map_is_the_transposed_product():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 3))
    x = rng.normal(size=(3,))
    upstream = rng.normal(size=(5,))
    vjp = numerical_vjp(lambda v: a @ v, x, upstream)
    assert relative_error(vjp, a.T @ upstream) < MAX_RELATIVE_ERROR


def test_relative_error_is_zero_for_equal_arrays_and_at_most_one():
    a = np.random.default_rng(2).normal(size=(4, 2))
    assert relative_error(a, a.copy()) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0  # no 0/0
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(a, 2 * a) == pytest.approx(1 / 3)
    assert relative_error(a, a + 1e-3) == relative_error(a + 1e-3, a)


def test_relative_error_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"expected \(3,\); received \(2,\)"):
        relative_error(np.zeros(2), np.zeros(3))


def test_a_wrong_gradient_is_caught():
    x = np.random.default_rng(3).normal(size=(2, 3))
    expected = numerical_gradient(lambda v: np.sum(v**3), x)
    right = check_gradient("cube", 3 * x**2, expected)
    wrong = check_gradient("cube", 2 * x, expected)  # the derivative of x**2, not x**3
    assert right.passed and right.relative_error < MAX_RELATIVE_ERROR
    assert not wrong.passed and wrong.relative_error > 1e-2
    assert wrong.tolerance == MAX_RELATIVE_ERROR and wrong.name == "cube"


def test_a_slightly_wrong_gradient_is_caught():
    x = np.random.default_rng(4).normal(size=(4, 4))
    expected = numerical_gradient(lambda v: np.sum(np.tanh(v)), x)
    off_by_one_entry = (1 - np.tanh(x) ** 2).copy()
    off_by_one_entry[1, 2] *= 1.001
    assert not check_gradient("tanh", off_by_one_entry, expected).passed


def test_check_gradient_fails_on_shape_mismatch_and_nan():
    report = check_gradient("shape", np.zeros((2, 3)), np.zeros((3, 2)))
    assert not report.passed and report.relative_error == float("inf")
    assert not check_gradient("nan", np.array([np.nan, 1.0]), np.array([1.0, 1.0])).passed


def test_away_from_kinks_moves_small_values_and_keeps_signs():
    x = np.array([-1.0, -5e-4, -0.0, 0.0, 2e-4, 0.5, KINK_MARGIN])
    moved = away_from_kinks(x)
    assert np.all(np.abs(moved) >= KINK_MARGIN)
    np.testing.assert_array_equal(moved[[0, 5, 6]], x[[0, 5, 6]])  # far values unchanged
    assert moved[1] < 0 and moved[4] > 0 and moved[3] == KINK_MARGIN
    assert np.all(np.abs(away_from_kinks(x, margin=0.1)) >= 0.1)


def test_a_relu_gradient_check_passes_away_from_kinks():
    rng = np.random.default_rng(5)
    x = away_from_kinks(rng.normal(scale=1e-3, size=(3, 4)))  # many entries start near 0
    upstream = rng.normal(size=x.shape)
    expected = numerical_vjp(lambda v: np.maximum(v, 0), x, upstream)
    assert check_gradient("relu", upstream * (x > 0), expected).passed


def test_gradient_report_is_frozen():
    report = GradientReport("x", 0.0, MAX_RELATIVE_ERROR, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.passed = False  # type: ignore[misc]


# ---- degenerate answers earn nothing ----------------------------------------------------------

def _layer_inputs(seed: int = 6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 5)), rng.normal(size=(3, 5))


def test_a_constant_forward_with_a_zero_backward_fails_and_says_both():
    x, upstream = _layer_inputs()
    numerical = numerical_vjp(lambda v: np.zeros((3, 5)), x, upstream)
    assert not numerical.any()  # 0 against 0: the relative error alone would pass
    report = check_gradient("constant", np.zeros_like(x), numerical)
    assert report.relative_error == 0.0
    assert not report.passed
    assert report.degenerate == f"{FLAT_FORWARD}; {ZERO_BACKWARD}"
    message = failure_message(report, "`Relu.backward`")
    assert "your forward does not depend on its input" in message
    assert "`Relu.backward` returned all zeros" in message


def test_a_constant_forward_fails_even_with_a_plausible_backward():
    x, upstream = _layer_inputs()
    numerical = numerical_vjp(lambda v: np.full((3, 5), 0.2), x, upstream)  # a uniform softmax
    report = check_gradient("uniform", upstream * (x > 0), numerical)
    assert not report.passed and report.degenerate == FLAT_FORWARD
    message = failure_message(report, "`Softmax.backward`")
    assert "does not depend on its input" in message and "all zeros" not in message


def test_a_zero_backward_of_a_real_forward_says_the_backward_is_zero():
    x, upstream = _layer_inputs()
    report = check_gradient("tanh", np.zeros_like(x), numerical_vjp(np.tanh, x, upstream))
    assert not report.passed and report.degenerate == ZERO_BACKWARD
    assert report.relative_error == pytest.approx(1.0)
    message = failure_message(report, "`Tanh.backward`")
    assert message.startswith("`Tanh.backward` returned all zeros, but your own forward does")


def test_a_forward_that_barely_depends_on_its_input_is_flat_for_its_scale():
    x, upstream = _layer_inputs()
    numerical = numerical_vjp(lambda v: 1e-12 * v, x, upstream)
    assert not check_gradient("tiny", 1e-12 * upstream, numerical).passed
    # The same function is not flat where gradients are expected to be that small.
    assert check_gradient("tiny", 1e-12 * upstream, numerical, scale=1e-12,
                          tolerance=1e-3).passed


def test_a_relu_on_negative_inputs_only_is_flat():
    """Callers must pick inputs at which a correct forward depends on its input."""
    rng = np.random.default_rng(7)
    x = -np.abs(away_from_kinks(rng.normal(size=(3, 4))))
    upstream = rng.normal(size=x.shape)
    numerical = numerical_vjp(lambda v: np.maximum(v, 0), x, upstream)
    assert check_gradient("relu", upstream * (x > 0), numerical).degenerate == (
        f"{FLAT_FORWARD}; {ZERO_BACKWARD}")


def test_a_correct_gradient_is_not_degenerate_and_has_no_message():
    x, upstream = _layer_inputs()
    report = check_gradient("tanh", upstream * (1 - np.tanh(x) ** 2),
                            numerical_vjp(np.tanh, x, upstream))
    assert report.passed and report.degenerate == ""
    assert failure_message(report, "`Tanh.backward`") == ""


def test_a_wrong_gradient_message_gives_the_error_and_tolerance():
    x, upstream = _layer_inputs()
    report = check_gradient("tanh", upstream, numerical_vjp(np.tanh, x, upstream))
    message = failure_message(report, "`Tanh.backward`")
    assert message.startswith("`Tanh.backward` does not match the numerical gradient of your "
                              "own forward: relative error")
    assert f"expected below {MAX_RELATIVE_ERROR:g}" in message


def test_a_flat_forward_message_names_what_the_gradient_is_taken_with_respect_to():
    x, upstream = _layer_inputs()
    report = check_gradient("W", np.zeros_like(x), numerical_vjp(lambda v: 0 * v, x, upstream))
    message = failure_message(report, "`FullConnectionLayer.backward` (grad_W)", wrt="W")
    assert "your forward does not depend on W here" in message
    assert message.endswith("computes something from W")
