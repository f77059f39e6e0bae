"""Numerical gradient checks for hand-written backward passes.

A backward pass is checked against centred differences of its own forward pass,
in float64, for a random upstream gradient (so a vector-valued forward reduces
to the scalar ``sum(upstream * forward(x))``). The pass mark is a norm-relative
error below `MAX_RELATIVE_ERROR`. ReLU-like forwards are not differentiable at
0, so their inputs are moved away from it first with `away_from_kinks`.

A degenerate answer earns nothing: a forward that ignores its input has a zero
numerical gradient, which a zero backward matches exactly. `check_gradient`
therefore fails whenever the numerical gradient is ~0 (below `FLAT_TOLERANCE`
times the gradient's expected scale), and says whether the backward is all zeros
too; callers choose inputs at which a correct forward does depend on its input.

Example:
    >>> x = np.array([[1.0, -2.0]])
    >>> report = check_gradient("square", 2 * x, numerical_gradient(lambda v: np.sum(v**2), x))
    >>> report.passed
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader.i18n import Domain

_, _n = Domain("checks").functions()

STEP = 1e-5  # centred-difference step h: truncation error O(h**2), rounding error O(eps / h)
MAX_RELATIVE_ERROR = 1e-7  # a correct float64 backward lands near 1e-9; a wrong one near 1
KINK_MARGIN = 1e-3  # far beyond STEP, so no perturbation crosses a ReLU kink
TINY = 1e-300  # guards the division in relative_error when both gradients are zero
# A numerical gradient below this fraction of its scale is zero: a constant forward gives
# exactly 0, while a forward that depends on unit-sized inputs gives norms near 1.
FLAT_TOLERANCE = 1e-8

FLAT_FORWARD = "the forward does not depend on its input (its numerical gradient is zero)"
ZERO_BACKWARD = "the backward is all zeros"

ScalarFunction = Callable[[np.ndarray], float]
ArrayFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GradientReport:
    """The outcome of one gradient comparison.

    Attributes:
        name: what was checked, e.g. "Relu.backward".
        relative_error: the norm-relative error between analytic and numerical gradients.
        tolerance: the largest relative error that passes.
        passed: whether ``relative_error <= tolerance`` and the check is not degenerate
            (False for NaN, mismatched shapes, a flat forward).
        degenerate: why values that may agree still earn nothing ("" when they can):
            `FLAT_FORWARD`, `ZERO_BACKWARD`, or both joined by "; ".
    """

    name: str
    relative_error: float
    tolerance: float
    passed: bool
    degenerate: str = ""


def numerical_gradient(f: ScalarFunction, x: np.ndarray, *, step: float = STEP) -> np.ndarray:
    """Centred-difference gradient of a scalar function, in float64.

    Each entry of a float64 copy of ``x`` is moved by ``+step`` and ``-step`` in
    turn; ``x`` itself is never modified.

    Args:
        f: a function of one array (the shape of ``x``) returning a scalar.
        x: the point, an array of any shape.
        step: the difference step h.

    Returns:
        float64 array of the shape of ``x``: (f(x + h e_i) - f(x - h e_i)) / 2h per entry.
    """
    point = np.array(x, dtype=np.float64)  # a private float64 copy we may perturb
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + step
        f_plus = float(f(point))
        point[index] = original - step
        f_minus = float(f(point))
        point[index] = original
        grad[index] = (f_plus - f_minus) / (2.0 * step)
    return grad


def numerical_vjp(
    forward: ArrayFunction, x: np.ndarray, upstream: np.ndarray, *, step: float = STEP
) -> np.ndarray:
    """Numerical vector-Jacobian product: the gradient of ``sum(upstream * forward(x))``.

    This is what a layer's ``backward(upstream)`` must return for its input.

    Args:
        forward: a function of one array returning an array of the shape of ``upstream``.
        x: the input, an array of any shape.
        upstream: the gradient of the loss w.r.t. ``forward(x)``.
        step: the difference step h.

    Returns:
        float64 array of the shape of ``x``.
    """
    upstream = np.asarray(upstream, dtype=np.float64)
    return numerical_gradient(lambda v: np.sum(upstream * forward(v)), x, step=step)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-relative error ``||a - b|| / max(||a|| + ||b||, TINY)``.

    Args:
        a, b: arrays of the same shape.

    Returns:
        A float in [0, 1]; 0 when equal, NaN if either holds NaN.

    Raises:
        ValueError: if the shapes differ.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Shapes differ: expected {b.shape}; received {a.shape}.")
    scale = max(float(np.linalg.norm(a) + np.linalg.norm(b)), TINY)
    return float(np.linalg.norm(a - b)) / scale


def away_from_kinks(x: np.ndarray, margin: float = KINK_MARGIN) -> np.ndarray:
    """Moves entries with ``|x| < margin`` to ``|x| >= margin``, keeping their sign.

    Zero goes to ``+margin``. Entries already far from 0 are unchanged.

    Args:
        x: array of any shape.
        margin: the smallest distance from 0 allowed.

    Returns:
        float64 array of the shape of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    shifted = np.where(x < 0, x - margin, x + margin)
    return np.where(np.abs(x) < margin, shifted, x)


def check_gradient(
    name: str, analytic: np.ndarray, numerical: np.ndarray,
    *, tolerance: float = MAX_RELATIVE_ERROR, scale: float = 1.0,
) -> GradientReport:
    """Compares an analytic gradient with a numerical one; a flat forward never passes.

    Args:
        name: what is checked, for the report.
        analytic: the gradient the backward pass returned.
        numerical: the expected gradient, e.g. from `numerical_vjp`.
        tolerance: the largest relative error that passes.
        scale: the norm a gradient of a function that depends on its input has at this
            point (about 1 for unit-sized inputs and upstream gradients; pass the upstream
            gradient's norm otherwise). Below ``FLAT_TOLERANCE * scale`` a gradient is zero.

    Returns:
        A `GradientReport`; mismatched shapes give ``relative_error=inf``, not passed; a
        numerical gradient of ~0 is degenerate, not passed, whatever the analytic one.
    """
    analytic = np.asarray(analytic)
    numerical = np.asarray(numerical)
    if analytic.shape != numerical.shape:
        return GradientReport(name, float("inf"), tolerance, False)
    error = relative_error(analytic, numerical)
    flat = max(float(scale), TINY) * FLAT_TOLERANCE
    reasons = []
    if float(np.linalg.norm(np.asarray(numerical, dtype=np.float64))) <= flat:
        reasons.append(FLAT_FORWARD)
    if float(np.linalg.norm(np.asarray(analytic, dtype=np.float64))) <= flat:
        reasons.append(ZERO_BACKWARD)
    degenerate = "; ".join(reasons)
    return GradientReport(name, error, tolerance, bool(error <= tolerance) and not degenerate,
                          degenerate)


def failure_message(report: GradientReport, what: str, *, wrt: str = "its input") -> str:
    """The student's message for a failed check, or "" when it passed.

    Args:
        report: the outcome of `check_gradient`.
        what: the backward checked, e.g. "`Relu.backward`".
        wrt: what the gradient is taken with respect to, e.g. "W1" ("its input").

    Returns:
        One sentence: a degenerate answer says which half is empty (the forward ignores its
        input, the backward is all zeros); a wrong one gives the error and the tolerance.
    """
    if report.passed:
        return ""
    reasons = report.degenerate.split("; ")
    if wrt == "its input":  # the default names no variable: a phrase of the reader's language
        wrt = _("its input")
    if FLAT_FORWARD in reasons and ZERO_BACKWARD in reasons:
        return _("{what} cannot be checked against your own forward: your forward does not "
                 "depend on {wrt} here (its numerical gradient is zero) and {what} returned "
                 "all zeros; a gradient check earns points only when the forward computes "
                 "something from {wrt}", what=what, wrt=wrt)
    if FLAT_FORWARD in reasons:
        return _("{what} cannot be checked against your own forward: your forward does not "
                 "depend on {wrt} here (its numerical gradient is zero); a gradient check "
                 "earns points only when the forward computes something from {wrt}",
                 what=what, wrt=wrt)
    if ZERO_BACKWARD in reasons:
        return _("{what} returned all zeros, but your own forward does depend on {wrt}: "
                 "relative error {error}; expected below {tolerance}", what=what, wrt=wrt,
                 error=f"{report.relative_error:.3g}", tolerance=f"{report.tolerance:g}")
    return _("{what} does not match the numerical gradient of your own forward: relative "
             "error {error}; expected below {tolerance} (centred differences, h={step}, "
             "float64)", what=what, error=f"{report.relative_error:.3g}",
             tolerance=f"{report.tolerance:g}", step=f"{STEP:g}")
