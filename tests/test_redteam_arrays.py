"""Red team: values a student returns cannot make an array check crash or pass wrongly.

A grader error is now credited provisionally, so a student value that makes a check
raise anything but AssertionError earns points until an instructor looks. Two came
through the real runtime: a Python int of 401 digits (OverflowError in ``float()``) and
a complex array, whose imaginary part ``astype(float)`` dropped, so garbage passed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.checks.arrays import as_array, as_number, assert_close, assert_number
from grader.runtime import SandboxLimits, StudentRuntime

HUGE = 10**400


@pytest.mark.parametrize("value", [HUGE, [HUGE, 1], [[1.0], [HUGE]], -HUGE])
def test_an_integer_too_large_for_a_float_is_a_wrong_answer(value: object) -> None:
    with pytest.raises(AssertionError, match="`softmax`: returned int|returned list"):
        as_array(value, "`softmax`:")
    with pytest.raises(AssertionError):
        assert_close(value, np.ones(2), "`softmax`")


def test_a_huge_integer_as_a_number_is_a_wrong_answer() -> None:
    with pytest.raises(AssertionError, match="expected a number that fits a float"):
        as_number(HUGE, "`cross_entropy`")
    with pytest.raises(AssertionError, match="expected a number that fits a float"):
        assert_number(HUGE, 1.0, "`cross_entropy`", tolerance=0.1)


def test_a_complex_array_whose_real_part_is_right_fails() -> None:
    with pytest.raises(AssertionError, match=r"returned complex numbers \(dtype complex128\); "
                                             "expected real numbers"):
        assert_close(np.array([1 + 5j, 2 + 0j]), [1.0, 2.0], "`relu(x)`")


def test_real_answers_still_pass() -> None:
    assert_close(np.array([1, 2]), [1.0, 2.0], "`relu(x)`")
    assert_close([1.0, 2.0], [1.0, 2.0], "`relu(x)`")
    assert as_number(np.float32(0.5), "`loss`") == 0.5 and as_number(10**10, "`n`") == 1e10


def test_through_the_runtime_a_huge_int_and_a_complex_array_are_wrong_answers(
        tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "answers.py").write_text(
        "import numpy as np\n\n\ndef huge():\n    return 10**400\n\n\n"
        "def complex_relu(x):\n    return np.maximum(x, 0) + 7j\n")
    with StudentRuntime(workspace, ["answers"],
                        limits=SandboxLimits(call_timeout_s=20)) as runtime:
        huge = runtime.student.answers.huge()
        x = np.array([-1.0, 2.0])
        relu = runtime.student.answers.complex_relu(x)
    assert huge == HUGE and np.iscomplexobj(relu)  # both cross the protocol as sent
    with pytest.raises(AssertionError, match="fits a float"):
        as_number(huge, "`huge()`")
    with pytest.raises(AssertionError, match="complex numbers"):
        assert_close(relu, np.maximum(x, 0), "`relu(x)`")
