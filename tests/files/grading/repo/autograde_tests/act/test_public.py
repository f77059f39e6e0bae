import numpy as np

from grader.checks.arrays import assert_close, assert_shape


def test_relu_shape(student):
    assert_shape(student.act.relu(np.ones((3, 5))), (3, 5), "`relu` on a (3, 5) array")


def test_relu_values(student):
    x = np.array([[-2.0, 0.5], [3.0, -0.1]])
    assert_close(student.act.relu(x), np.array([[0, 0.5], [3.0, 0]]), "`relu(x)`")
