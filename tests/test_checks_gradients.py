"""Tests for grader.checks.gradients: the numerical gradient checker itself."""

import dataclasses

import numpy as np
import pytest

from grader.checks import gradients
from grader.checks.gradients import (
    KINK_MARGIN,
    MAX_RELATIVE_ERROR,
    GradientReport,
    away_from_kinks,
    check_gradient,
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
