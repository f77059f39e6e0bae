"""Public checks for `tf_basics`: the slides' numbers and simple properties.

These ship with the assignment (`grader check`); they need neither the reference
solution nor any dataset.
"""

from __future__ import annotations

import numpy as np

from grader.checks.arrays import assert_close, assert_number, assert_shape
from grader.grading.fixtures import course_messages
from grader.runtime.protocol import Callable

# The slides' 4x4 examples (the average-pooling slide has 31 in the corner).
SLIDE_MAX_POOL_INPUT = np.array(
    [[29, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], dtype=np.float64)
SLIDE_AVG_POOL_INPUT = np.array(
    [[31, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], dtype=np.float64)
SLIDE_MAX_POOL_OUTPUT = np.array([[100, 184], [12, 45]], dtype=np.float64)
SLIDE_AVG_POOL_OUTPUT = np.array([[36.5, 80], [12, 15]])  # the slide truncates 36.5 to 36
LINE_W, LINE_B = 3.0, 2.0
LINE_TOLERANCE = 0.1  # 100 noisy points (sigma 0.1) pin w and b far closer than this

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


def test_slide_pooling(student):
    m = student.tf_basics
    assert_close(m.max_pool2d(SLIDE_MAX_POOL_INPUT), SLIDE_MAX_POOL_OUTPUT,
                 _("`max_pool2d` on the slide's 4x4 example"))
    assert_close(m.avg_pool2d(SLIDE_AVG_POOL_INPUT), SLIDE_AVG_POOL_OUTPUT,
                 _("`avg_pool2d` on the slide's 4x4 example (the mean is not rounded)"))


def test_slide_convolution_with_ones(student):
    kernel = np.ones((2, 2))
    expected = np.array([[sum(SLIDE_MAX_POOL_INPUT[u:u + 2, v:v + 2].ravel()) for v in range(3)]
                         for u in range(3)])  # a kernel of ones sums each window
    assert_close(student.tf_basics.conv2d(SLIDE_MAX_POOL_INPUT, kernel), expected,
                 _("`conv2d(x, np.ones((2, 2)))` on the slide's 4x4 example"))
    assert_close(student.tf_basics.conv2d(SLIDE_MAX_POOL_INPUT, kernel, 1.5), expected + 1.5,
                 _("`conv2d(x, np.ones((2, 2)), bias=1.5)` on the slide's 4x4 example"))


def test_activation_basics(student):
    m = student.tf_basics
    x = np.array([[-2.0, 0.0, 3.0]])
    # Points where a constant answer (0.5, 0) is wrong: degenerate answers earn nothing.
    assert_close(m.sigmoid(x), 1 / (1 + np.exp(-x)), "`sigmoid([[-2, 0, 3]])`")
    assert_close(m.relu(x), np.array([[0.0, 0.0, 3.0]]), "`relu([[-2, 0, 3]])`")
    assert_close(m.tanh(x), np.tanh(x), "`tanh([[-2, 0, 3]])`")
    logits = np.arange(12.0).reshape(3, 4) / 4
    probs = assert_shape(m.softmax(logits), (3, 4), _("`softmax` of a (3, 4) array"))
    sums = probs.sum(axis=-1)
    assert np.allclose(sums, 1.0), _(
        "`softmax(x)` with x of shape (3, 4): each row must sum to 1 (axis=-1); the row sums "
        "are {sums}", sums=np.round(sums, 4).tolist())


def test_tf_gradient_of_square(student):
    x = np.array([1.0, -2.0, 3.5])
    assert_close(student.tf_basics.tf_gradient(Callable("square"), x), 2 * x,
                 _("`tf_gradient(f, x)` with f(t) = t * t (summed) at [1, -2, 3.5]; expected 2x"),
                 rtol=1e-5)


def test_fit_linear_recovers_a_line(student):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=100).astype(np.float32)
    y = (LINE_W * x + LINE_B + 0.1 * rng.normal(size=100)).astype(np.float32)
    result = student.tf_basics.fit_linear(x, y)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(_("`fit_linear(x, y)` returned {type}; expected a pair (w, b)",
                               type=type(result).__name__))
    what = _("`fit_linear(x, y)` on 100 noisy points of y = {w} x + {b}", w=f"{LINE_W:g}",
             b=f"{LINE_B:g}")
    assert_number(result[0], LINE_W, f"{what}: w", tolerance=LINE_TOLERANCE)
    assert_number(result[1], LINE_B, f"{what}: b", tolerance=LINE_TOLERANCE)
