"""Comparing what a student's code returned with what was expected.

Every check raises AssertionError with a message in the Keras style: what was
checked, what was expected, what came back. Hidden tests use these instead of
bare asserts, so a student reads "`relu` returned shape (7, 4); expected (7, 6)".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.i18n import Domain, join_clauses, join_items

_, _n = Domain("checks").functions()

RTOL = 1e-6  # values computed the same way in float64 agree far closer than this
ATOL = 1e-8
MAX_SHOWN = 3  # mismatching entries listed in a message


def as_array(received: Any, what: str) -> np.ndarray:
    """The received value as a numeric array, or an AssertionError saying what it was."""
    if isinstance(received, np.ndarray):
        array = received
    elif isinstance(received, (int, float, list, tuple, np.number)) and not isinstance(
            received, bool):
        try:
            array = np.asarray(received, dtype=float)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int of 10**400
            raise AssertionError(_("{what} returned {received}; expected an array of numbers",
                                   what=what, received=_describe(received))) from None
    else:
        raise AssertionError(_("{what} returned {received}; expected a numpy array",
                               what=what, received=_describe(received)))
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise AssertionError(_("{what} returned an array of dtype {dtype}; expected numbers",
                               what=what, dtype=array.dtype))
    if np.issubdtype(array.dtype, np.complexfloating):  # astype(float) drops the imaginary part
        raise AssertionError(_("{what} returned complex numbers (dtype {dtype}); expected real "
                               "numbers", what=what, dtype=array.dtype))
    return array


def assert_shape(received: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = as_array(received, what)
    if array.shape != tuple(shape):
        raise AssertionError(_("{what} returned shape {received}; expected {expected}",
                               what=what, received=array.shape, expected=tuple(shape)))
    return array


def assert_close(
    received: Any,
    expected: np.ndarray | float,
    what: str,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Checks shape, finiteness and values of `received` against `expected`.

    Args:
        received: what the student's code returned (plain data from the runtime).
        expected: the value computed by the reference in the grader's process.
        what: the call being checked, e.g. "`softmax(x)` with x of shape (3, 5)".
        rtol: relative tolerance.
        atol: absolute tolerance.

    Raises:
        AssertionError: with a message naming the first differing entries.
    """
    expected = np.asarray(expected, dtype=float)
    array = assert_shape(received, expected.shape, what).astype(float)
    if not np.all(np.isfinite(array)) and np.all(np.isfinite(expected)):
        bad = np.argwhere(~np.isfinite(array))[:MAX_SHOWN]
        raise AssertionError(_("{what} returned non-finite values (nan or inf) at {where}; "
                               "expected finite values", what=what, where=_indices(bad)))
    mismatch = ~np.isclose(array, expected, rtol=rtol, atol=atol, equal_nan=True)
    if mismatch.any():
        where = np.argwhere(mismatch)[:MAX_SHOWN]
        # Each difference is a clause; the locale joins them ("; " / "；").
        shown = join_clauses(
            _("[{index}]: got {received}, expected {expected}",
              index=", ".join(map(str, idx)), received=f"{array[tuple(idx)]:.6g}",
              expected=f"{expected[tuple(idx)]:.6g}") for idx in where) if array.ndim else (
            _("got {received}, expected {expected}", received=f"{float(array):.6g}",
              expected=f"{float(expected):.6g}"))
        raise AssertionError(_n(
            "{what}: {n} of {size} values differs from the expected ones (tolerance "
            "rtol={rtol}, atol={atol}); {shown}",
            "{what}: {n} of {size} values differ from the expected ones (tolerance "
            "rtol={rtol}, atol={atol}); {shown}", int(mismatch.sum()),
            what=what, size=mismatch.size, rtol=f"{rtol:g}", atol=f"{atol:g}", shown=shown))


def as_number(received: Any, what: str) -> float:
    """The received value as a Python float: THE way every suite reads a student's number.

    Accepted, as correct styles of one number: a Python int or float, a numpy scalar
    (np.float32(0.5), np.int64(3)), a 0-d array (np.array(0.5)) and a one-element array of
    any number of dimensions (np.array([0.5]), np.array([[0.5]]), as `keepdims` or a
    reshape leaves it). Refused, with a message saying what came back: booleans, strings,
    None, lists, and arrays of more than one value or of a non-numeric dtype. Non-finite
    values are returned as they are; whether nan is wrong is the check's business.

    Args:
        received: what the student's code returned (plain data from the runtime).
        what: the call being checked, e.g. "`CrossEntropy.forward(p, y)`".

    Returns:
        The number as a float.

    Raises:
        AssertionError: when ``received`` is not one number.
    """
    if isinstance(received, (bool, np.bool_, np.complexfloating)):
        raise AssertionError(_("{what} returned {received}; expected a number",
                               what=what, received=_describe(received)))
    if isinstance(received, (int, float, np.number)):
        try:
            return float(received)
        except OverflowError:  # an int of 10**400 would otherwise be a grader error
            raise AssertionError(_("{what} returned {received}; expected a number that fits "
                                   "a float", what=what, received=_describe(received))) from None
    if isinstance(received, np.ndarray):
        if not np.issubdtype(received.dtype, np.number) or np.issubdtype(
                received.dtype, np.complexfloating):
            raise AssertionError(_("{what} returned an array of dtype {dtype}; expected a "
                                   "number", what=what, dtype=received.dtype))
        if received.size != 1:
            raise AssertionError(_("{what} returned an array of shape {shape}; expected one "
                                   "number (a float, or an array of one element)",
                                   what=what, shape=received.shape))
        return float(received.reshape(()))  # float() of ndim > 0 is deprecated in numpy
    raise AssertionError(_("{what} returned {received}; expected a number",
                           what=what, received=_describe(received)))


def assert_number(received: Any, expected: float, what: str, *, tolerance: float) -> float:
    """Checks a scalar result, e.g. an accuracy or a loss, read through `as_number`."""
    value = as_number(received, what)
    if not abs(value - expected) <= tolerance:
        raise AssertionError(_("{what} returned {received}; expected {expected} (within "
                               "{tolerance})", what=what, received=f"{value:.6g}",
                               expected=f"{expected:.6g}", tolerance=f"{tolerance:g}"))
    return value


def _indices(rows: np.ndarray) -> str:
    return join_items("[" + ", ".join(map(str, row)) + "]" for row in rows)


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
