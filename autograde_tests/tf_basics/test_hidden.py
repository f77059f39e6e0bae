"""Hidden checks for `tf_basics`: values against the reference, edge cases, gradients.

The numpy functions' expected values come from `reference.tf_basics` in the
grader's process. A degenerate answer earns nothing: the zero gradient of a constant
function counts only from a `tf_gradient` that gets a non-zero gradient right.
TensorFlow is never imported here: the expected gradients of
the grader-side functions handed to `tf_gradient` are written out analytically,
and `fit_linear`'s expected trajectory is plain gradient descent in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference.tf_basics as ref
from grader.checks.arrays import as_array, assert_close, assert_number
from grader.checks.diagnose import Diagnosed, Mistake, matching_mistake
from grader.grading.fixtures import course_messages
from grader.runtime.errors import StudentError
from grader.runtime.protocol import Callable

HUGE = 1000.0  # exp(1000) overflows float64
TF_RTOL = 1e-5  # a student may compute gradients in float32
FIT_TOLERANCE = 1e-3  # float32 training against the float64 trajectory
FIT_SHORT_EPOCHS = 5  # few steps: the trajectory, not the optimum, shows the update rule

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return ref.sigmoid(x)


def _overflow(function: str, formula: str) -> Mistake:
    """Non-finite values where the right answer is finite: exp of a large number overflowed."""
    return Mistake(f"{function}_overflow", _("Your `{function}` returns inf or nan at large "
                                             "inputs: exp(1000) overflows; {formula}.",
                                             function=function, formula=formula), lambda: None)


def _check(received, expected: np.ndarray, what: str, mistakes=(), overflow=None) -> None:
    """`assert_close`, and on a mismatch the known mistake the answer matches, if any."""
    try:
        assert_close(received, expected, what)
    except AssertionError as error:
        try:
            answer = np.asarray(received, dtype=np.float64)
        except (TypeError, ValueError):
            raise error from None
        if (overflow is not None and answer.shape == expected.shape
                and not np.all(np.isfinite(answer)) and np.all(np.isfinite(expected))):
            raise Diagnosed(str(error), overflow) from None
        mistake = matching_mistake(answer, mistakes)
        if mistake is not None:
            raise Diagnosed(str(error), mistake) from None
        raise


def SIGMOID_MISTAKES(x: np.ndarray) -> list[Mistake]:  # noqa: N802 - reads as a table
    return [Mistake("sigmoid_sign_slip", _("Your `sigmoid` computes 1 / (1 + exp(x)), which is "
                                           "1 - sigmoid(x): the exponent is -x, "
                                           "sigmoid(x) = 1 / (1 + exp(-x))."),
                    lambda: 1 - ref.sigmoid(x))]


def SOFTMAX_MISTAKES(x: np.ndarray, axis: int) -> list[Mistake]:  # noqa: N802
    others = [a for a in range(-x.ndim, 0) if a != (axis if axis < 0 else axis - x.ndim)]
    return [Mistake("softmax_wrong_axis", _("Your `softmax` normalises along axis {other} "
                                            "instead of axis={axis}: sum exp(x) along the "
                                            "`axis` argument, with keepdims=True.",
                                            other=other, axis=axis),
                    lambda other=other: ref.softmax(x, axis=other))
            for other in others]


def _window_short(x: np.ndarray, pool_size: int, stride: int, reduce) -> np.ndarray:
    """Pooling whose window slice stops one row and one column early (windows of p - 1)."""
    out_h, out_w = (x.shape[0] - pool_size) // stride + 1, (x.shape[1] - pool_size) // stride + 1
    return np.array([[reduce(x[i * stride:i * stride + pool_size - 1,
                                j * stride:j * stride + pool_size - 1])
                      for j in range(out_w)] for i in range(out_h)])


def _steps_by_pool_size(x: np.ndarray, pool_size: int, stride: int, reduce) -> np.ndarray:
    """Pooling with the output size of `stride` but windows starting at multiples of
    `pool_size` (numpy clips the windows that run past the edge; an empty one raises)."""
    out_h, out_w = (x.shape[0] - pool_size) // stride + 1, (x.shape[1] - pool_size) // stride + 1
    return np.array([[reduce(x[i * pool_size:(i + 1) * pool_size,
                                j * pool_size:(j + 1) * pool_size])
                      for j in range(out_w)] for i in range(out_h)])


def _pool_mistakes(name: str, x, pool_size: int, stride: int, own, other) -> list[Mistake]:
    reduce = np.max if name == "max_pool2d" else np.mean
    steps = _("Your `{name}` steps by `pool_size` instead of `stride`: window (i, j) starts "
              "at (i * stride, j * stride), top = i * stride, left = j * stride; the two are "
              "equal only when stride == pool_size.", name=name)
    return [
        Mistake(f"{name}_stride_is_pool_size", steps, lambda: own(x, pool_size, pool_size)),
        Mistake(f"{name}_stride_is_pool_size", steps,
                lambda: _steps_by_pool_size(x, pool_size, stride, reduce)),
        Mistake(f"{name}_output_size", _("Your `{name}` drops the last window: the output has "
                                         "(H - pool_size) // stride + 1 rows (and the same for "
                                         "columns); the + 1 is missing.", name=name),
                lambda: own(x, pool_size, stride)[:-1, :-1]),
        Mistake(f"{name}_window_short", _("Your `{name}`'s windows are one row and one column "
                                          "short: slice x[top:top + pool_size, "
                                          "left:left + pool_size].", name=name),
                lambda: _window_short(x, pool_size, stride, reduce)),
        Mistake(f"{name}_wrong_reduction",
                _("Your `{name}` takes the mean of each window; expected the maximum.", name=name)
                if name == "max_pool2d" else
                _("Your `{name}` takes the maximum of each window; expected the mean.", name=name),
                lambda: other(x, pool_size, stride)),
    ] + ([] if name == "max_pool2d" else [
        Mistake("avg_pool2d_truncated", _("Your `avg_pool2d` rounds each mean down (floor "
                                          "division, //): the slide shows 36 for a window whose "
                                          "mean is 36.5 only because it prints whole numbers; "
                                          "the mean is sum(window) / pool_size^2, not rounded."),
                lambda: np.floor(own(x, pool_size, stride)))])


# Analytic gradients of the summed grader-side functions in grader.runtime.callables.
GRADIENTS = {
    "square": lambda x: 2 * x,
    "cube_sum": lambda x: 3 * x ** 2,
    "sin_sum": np.cos,
    "sigmoid_sum": lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
    "tanh_sum": lambda x: 1 - np.tanh(x) ** 2,
    "constant": np.zeros_like,
}


@pytest.mark.parametrize("shape", [(3, 4), (7,), (2, 3, 2)])
def test_sigmoid_values(student, shape):
    x = np.random.default_rng(len(shape)).normal(scale=4.0, size=shape)
    _check(student.tf_basics.sigmoid(x), ref.sigmoid(x),
           _("`sigmoid(x)` with x of shape {shape}", shape=shape), SIGMOID_MISTAKES(x))


def test_sigmoid_huge_inputs(student):
    x = np.array([-HUGE, -50.0, 0.0, 50.0, HUGE])
    _check(student.tf_basics.sigmoid(x), ref.sigmoid(x),
           _("`sigmoid(x)` at x = [-1000, -50, 0, 50, 1000] (use exp(-|x|))"),
           SIGMOID_MISTAKES(x),
           overflow=_overflow("sigmoid", _("use exp(-|x|), which never overflows")))


@pytest.mark.parametrize("shape", [(3, 4), (5,), (2, 2, 3)])
def test_relu_values(student, shape):
    x = np.random.default_rng(len(shape)).normal(size=shape)
    x.flat[0] = 0.0
    assert_close(student.tf_basics.relu(x), ref.relu(x),
                 _("`relu(x)` with x of shape {shape}", shape=shape))


@pytest.mark.parametrize("shape", [(3, 4), (6,)])
def test_tanh_values(student, shape):
    x = np.random.default_rng(len(shape)).normal(scale=2.0, size=shape)
    x.flat[-1] = HUGE
    _check(student.tf_basics.tanh(x), ref.tanh(x),
           _("`tanh(x)` with x of shape {shape} (one entry is 1000)", shape=shape),
           [Mistake("tanh_is_tanh_of_half", _("Your `tanh` computes 2 * sigmoid(x) - 1, which "
                                              "is tanh(x / 2); tanh(x) = 2 * sigmoid(2x) - 1."),
                    lambda: np.tanh(x / 2))],
           overflow=_overflow("tanh", _("use np.tanh, or 2 * sigmoid(2x) - 1 with a stable "
                                        "sigmoid")))


@pytest.mark.parametrize("shape", [(4, 6), (1, 5), (7,)])
def test_softmax_default_axis(student, shape):
    x = np.random.default_rng(sum(shape)).normal(scale=3.0, size=shape)
    _check(student.tf_basics.softmax(x), ref.softmax(x),
           _("`softmax(x)` with x of shape {shape} (axis=-1)", shape=shape),
           SOFTMAX_MISTAKES(x, -1))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_axis(student, axis):
    x = np.random.default_rng(axis + 5).normal(size=(3, 4, 5))
    _check(student.tf_basics.softmax(x, axis=axis), ref.softmax(x, axis=axis),
           _("`softmax(x, axis={axis})` with x of shape (3, 4, 5)", axis=axis),
           SOFTMAX_MISTAKES(x, axis))


def test_softmax_huge_logits(student):
    x = np.array([[HUGE, 0.0, -HUGE], [HUGE, HUGE, 0.0], [-HUGE, -HUGE, -HUGE]])
    _check(student.tf_basics.softmax(x), ref.softmax(x),
           _("`softmax(x)` with logits of ±1000 (subtract the maximum first)"),
           overflow=_overflow("softmax", _("subtract the maximum along the axis first "
                                           "(softmax(x) = softmax(x - max x))")))


POOL_CASES = [  # (input shape, pool_size, stride)
    ((6, 8), 2, 2),
    ((5, 7), 2, 2),  # odd sizes: the last row and column are dropped
    ((5, 7), 3, 1),  # overlapping windows
    ((7, 6), 3, 2),
]


@pytest.mark.parametrize("shape, pool_size, stride", POOL_CASES)
def test_max_pool(student, shape, pool_size, stride):
    x = np.random.default_rng(sum(shape) + pool_size).normal(size=shape)
    _check(student.tf_basics.max_pool2d(x, pool_size, stride),
           ref.max_pool2d(x, pool_size, stride),
           _("`max_pool2d(x, pool_size={pool_size}, stride={stride})` with x of shape {shape}",
             pool_size=pool_size, stride=stride, shape=shape),
           _pool_mistakes("max_pool2d", x, pool_size, stride, ref.max_pool2d, ref.avg_pool2d))


@pytest.mark.parametrize("shape, pool_size, stride", POOL_CASES)
def test_avg_pool(student, shape, pool_size, stride):
    x = np.random.default_rng(sum(shape) + pool_size).normal(size=shape)
    _check(student.tf_basics.avg_pool2d(x, pool_size, stride),
           ref.avg_pool2d(x, pool_size, stride),
           _("`avg_pool2d(x, pool_size={pool_size}, stride={stride})` with x of shape {shape}",
             pool_size=pool_size, stride=stride, shape=shape),
           _pool_mistakes("avg_pool2d", x, pool_size, stride, ref.avg_pool2d, ref.max_pool2d))


@pytest.mark.parametrize("shape, kernel_shape, bias", [
    ((5, 5), (3, 3), 0.0),
    ((6, 7), (2, 3), 0.5),   # a non-square kernel on a non-square input
    ((4, 6), (3, 1), -1.0),
    ((3, 3), (3, 3), 0.0),   # a 1x1 output
])
def test_conv2d(student, shape, kernel_shape, bias):
    rng = np.random.default_rng(sum(shape) + sum(kernel_shape))
    x, kernel = rng.normal(size=shape), rng.normal(size=kernel_shape)
    _check(student.tf_basics.conv2d(x, kernel, bias), ref.conv2d(x, kernel, bias),
           _("`conv2d(x, kernel, bias={bias})` with x {shape} and kernel {kernel_shape} "
             "(cross-correlation: the kernel is not flipped)", bias=f"{bias:g}", shape=shape,
             kernel_shape=kernel_shape), [
               Mistake("conv2d_flipped_kernel", _(
                   "Your `conv2d` flips the kernel (a true convolution); the lecture's layer "
                   "computes the cross-correlation "
                   "out[u, v] = sum_ij kernel[i, j] * x[u + i, v + j] + bias."),
                       lambda: ref.conv2d(x, kernel[::-1, ::-1], bias)),
               Mistake("conv2d_output_size", _(
                   "Your `conv2d` drops the last row and column: a valid convolution has "
                   "H - kh + 1 rows and W - kw + 1 columns."),
                       lambda: ref.conv2d(x, kernel, bias)[:-1, :-1])])


def _gradient_zero(expected: np.ndarray) -> Mistake:
    return Mistake("tf_gradient_all_zero", _(
        "Your `tf_gradient` returns zeros where f depends on x: the tape recorded nothing that "
        "leads from x to f(x). A tf.constant is not watched automatically: call tape.watch(t) "
        "inside `with tf.GradientTape() as tape:` and compute y = f(t) there, then "
        "tape.gradient(y, t)."), lambda: np.zeros_like(expected))


def _none_gradient() -> Mistake:
    """The mistake of a gradient of None (built when raised: in the language of that moment)."""
    return Mistake("tf_gradient_none_when_unconnected", _(
        "Your `tf_gradient` fails when f does not depend on x: tape.gradient(y, t) returns None "
        "for an unconnected target, and None has no .numpy(); pass "
        "unconnected_gradients=tf.UnconnectedGradients.ZERO (or return zeros of x's shape when "
        "the gradient is None)."), lambda: None)


def _gradient(student, name: str, x: np.ndarray, expected: np.ndarray, what: str) -> None:
    """`assert_close` on the student's gradient, naming an all-zero one."""
    received = student.tf_basics.tf_gradient(Callable(name), x)
    try:
        assert_close(received, expected, what, rtol=TF_RTOL, atol=1e-6)
    except AssertionError as error:
        mistake = matching_mistake(received, [_gradient_zero(expected)]) if np.any(
            expected != 0) else None
        if mistake is not None:
            raise Diagnosed(str(error), mistake) from None
        raise


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_tf_gradient(student, name):
    x = np.random.default_rng(len(name)).normal(size=(2, 3))
    expected = GRADIENTS[name](x)
    what = _("`tf_gradient(f, x)` for f = {name} at x of shape (2, 3)", name=name)
    if name != "constant":
        _gradient(student, name, x, expected, what)
        return
    # A zero gradient is only an answer from a `tf_gradient` that computes gradients:
    # one that returns zeros for every f must not earn this case.
    _gradient(student, "square", x, GRADIENTS["square"](x),
              _("`tf_gradient(f, x)` for f = square at the same x (a zero gradient for a "
                "constant f counts only when the gradient of x * x is right)"))
    what = _("`tf_gradient(f, x)` for f = {name} at x of shape (2, 3) (f does not depend on x: "
             "the gradient is zero)", name=name)
    try:
        received = student.tf_basics.tf_gradient(Callable(name), x)
    except StudentError as error:  # right for square, fails for an unconnected f
        if error.type_name not in ("AttributeError", "TypeError"):  # not what None gives
            raise
        raise Diagnosed(_("{what} raised {error_type}: {error}; expected zeros of shape (2, 3)",
                          what=what, error_type=error.type_name, error=error.message),
                        _none_gradient()) from None
    if received is None:
        raise Diagnosed(_("{what} returned None; expected zeros of shape (2, 3)", what=what),
                        _none_gradient())
    assert_close(received, expected, what, rtol=TF_RTOL, atol=1e-6)


def test_tf_gradient_integer_input(student):
    x = np.array([[1, -2], [3, 0]])
    assert_close(student.tf_basics.tf_gradient(Callable("cube_sum"), x), 3.0 * x ** 2,
                 _("`tf_gradient(f, x)` for f = cube_sum at an integer array (use float64)"),
                 rtol=TF_RTOL)


def _scalar(value, what: str) -> float:
    """A number, or a one-element array (a 0-d tensor's `.numpy()`), as a float."""
    array = as_array(value, what)
    if array.size != 1:
        raise AssertionError(_("{what} has shape {shape}; expected a single number", what=what,
                               shape=array.shape))
    return float(array.reshape(-1)[0])


def _gradient_descent(x: np.ndarray, y: np.ndarray, epochs: int, learning_rate: float):
    """The expected (w, b) of fit_linear, in float64."""
    w = b = 0.0
    for _epoch in range(epochs):
        error = w * x + b - y
        w, b = w - learning_rate * 2 * np.mean(error * x), b - learning_rate * 2 * np.mean(error)
    return w, b


@pytest.mark.parametrize("epochs, learning_rate, line", [
    (FIT_SHORT_EPOCHS, 0.1, (-1.5, 0.5)),
    (FIT_SHORT_EPOCHS, 0.03, (2.0, -1.0)),
    (ref.FIT_EPOCHS, ref.FIT_LEARNING_RATE, (-0.7, 4.0)),
])
def test_fit_linear(student, epochs, learning_rate, line):
    rng = np.random.default_rng(int(epochs * learning_rate * 100))
    x = rng.uniform(-2.0, 2.0, size=50).astype(np.float32)
    y = (line[0] * x + line[1] + 0.05 * rng.normal(size=50)).astype(np.float32)
    expected = _gradient_descent(x.astype(np.float64), y.astype(np.float64), epochs,
                                 learning_rate)
    what = _("`fit_linear(x, y, epochs={epochs}, learning_rate={learning_rate})` on 50 points "
             "near y = {w} x + {b}", epochs=epochs, learning_rate=f"{learning_rate:g}",
             w=f"{line[0]:g}", b=f"{line[1]:g}")
    result = student.tf_basics.fit_linear(x, y, epochs=epochs, learning_rate=learning_rate)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair (w, b)", what=what,
                               type=type(result).__name__))
    w, b = (_scalar(value, f"{what}: {name}") for value, name in zip(result, "wb", strict=True))
    try:
        assert_number(w, expected[0], f"{what}: w", tolerance=FIT_TOLERANCE)
        assert_number(b, expected[1], f"{what}: b", tolerance=FIT_TOLERANCE)
    except AssertionError as error:
        mistake = matching_mistake(np.array([w, b]), _fit_mistakes(x, y, epochs, learning_rate),
                                   rtol=FIT_TOLERANCE, atol=FIT_TOLERANCE)
        if mistake is not None:
            raise Diagnosed(str(error), mistake) from None
        raise


def _fit_mistakes(x: np.ndarray, y: np.ndarray, epochs: int,
                  learning_rate: float) -> list[Mistake]:
    """Known mistakes of fit_linear, predicted as the (w, b) their trajectory ends at."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)

    def ends(rate: float) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # these trajectories diverge
            return np.array(_gradient_descent(x64, y64, epochs, rate))

    return [
        Mistake("fit_linear_no_learning_rate", _(
            "Your `fit_linear` subtracts the gradient without multiplying it by `learning_rate` "
            "(a step size of 1): the lecture's step is w.assign_sub(learning_rate * dL/dw) on "
            "the mean squared error L = mean((w x + b - y)^2)."), lambda: ends(1.0)),
        Mistake("fit_linear_sum_loss", _(
            "Your `fit_linear` minimises the sum of squared errors (tf.reduce_sum): its gradient "
            "is {n} times the mean's, so every step is {n} times too long; the lecture's step "
            "is w.assign_sub(learning_rate * dL/dw) on the mean squared error "
            "L = mean((w x + b - y)^2) (tf.reduce_mean).", n=len(x)),
                lambda: ends(learning_rate * len(x)))]
