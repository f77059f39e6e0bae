import numpy as np
import pytest

from grader.checks.arrays import assert_close


@pytest.mark.parametrize("seed", [0, 1])
def test_sigmoid_values(student, seed):
    x = np.random.default_rng(seed).normal(size=(4, 3))
    assert_close(student.act.sigmoid(x), 1 / (1 + np.exp(-x)), "`sigmoid(x)`")


def test_sigmoid_large(student):
    x = np.array([-1000.0, 0.0, 1000.0])
    with np.errstate(over="ignore"):
        assert_close(student.act.sigmoid(x), np.array([0.0, 0.5, 1.0]), "`sigmoid` on ±1000")
