"""`grader.checks.arrays.as_number`: one number in any correct style, anything else refused.

Every suite reads a student's scalar (a loss, an accuracy) through `as_number`, so a
cross-entropy returning a one-element array scores as a float does (issue 10, item 3).
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks.arrays import as_number, assert_number


@pytest.mark.parametrize("value", [
    0.25, np.float32(0.25), np.float64(0.25), np.array(0.25), np.array([0.25]),
    np.array([[0.25]]), np.array([0.25], dtype=np.float32)],
    ids=["python", "float32", "float64", "0-d", "one-element", "1x1", "one-element-float32"])
def test_one_number_in_any_correct_style_is_read(value):
    number = as_number(value, "`CrossEntropy.forward(p, y)`")
    assert type(number) is float and number == 0.25


@pytest.mark.parametrize("value", [3, np.int64(3), np.array([3], dtype=np.int32)])
def test_integers_are_numbers(value):
    assert as_number(value, "`computeAccuracy`") == 3.0


@pytest.mark.parametrize("value, says", [
    (True, "bool"), (np.bool_(True), "bool"), ("0.25", "str"), (None, "None"),
    ([0.25], "list"), (np.array([0.25, 0.5]), "shape (2,)"), (np.zeros((0,)), "shape (0,)"),
    (np.array(["a"]), "dtype <U1"), (np.complex128(1 + 2j), "complex128"),
    (np.array([1 + 2j]), "dtype complex128")])
def test_anything_but_one_number_is_refused_with_what_came_back(value, says):
    with pytest.raises(AssertionError) as raised:
        as_number(value, "`CrossEntropy.forward(p, y)`")
    message = str(raised.value)
    assert message.startswith("`CrossEntropy.forward(p, y)` returned") and says in message


def test_a_one_element_array_is_judged_by_its_value():
    assert assert_number(np.array([2.0]), 2.0, "`loss`", tolerance=1e-9) == 2.0
    with pytest.raises(AssertionError, match="returned 2.5; expected 2"):
        assert_number(np.array([2.5]), 2.0, "`loss`", tolerance=1e-9)


def test_nan_is_read_and_then_fails_the_comparison():
    assert np.isnan(as_number(np.array([np.nan]), "`loss`"))
    with pytest.raises(AssertionError, match="returned nan"):
        assert_number(np.array([np.nan]), 2.0, "`loss`", tolerance=1e-9)
