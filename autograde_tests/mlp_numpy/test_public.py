"""Public checks for `mlp_numpy`: shapes and gradients against your own forward passes.

These ship with the assignment (`grader check`). They need neither the reference
solution nor any dataset: each backward pass is compared with centred differences
of the same layer's forward pass, in float64, for a random upstream gradient.
A forward that ignores its input (its numerical gradient is zero) earns nothing,
even when its backward returns zeros to match; so does a layer whose output does
not change with its input in the shape checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks import mlp_diagnoses
from grader.checks.arrays import as_array, as_number, assert_shape
from grader.checks.diagnose import Diagnosed, fail
from grader.checks.gradients import (
    KINK_MARGIN,
    STEP,
    away_from_kinks,
    check_gradient,
    failure_message,
    numerical_gradient,
    numerical_vjp,
)
from grader.checks.mlp_composition import agrees, compose
from grader.grading.fixtures import course_messages

SEEDS = (0, 1, 2)  # each gradient check runs on three random draws
FC_SHAPE = (3, 4, 5)  # N, D, M: small and non-square so a missing transpose shows
ACT_SHAPE = (3, 5)  # Relu, Softmax and CrossEntropy inputs (N, C)
# Every backward check runs on the non-square shape for each seed and once on a square one:
# a transpose that only a shape mismatch would reveal (fixed by `if shape != ...: .T`) and
# an axis mix-up that only a square input hides both show on one of them.
FC_CASES = [pytest.param(seed, FC_SHAPE, id=f"seed{seed}") for seed in SEEDS] + [
    pytest.param(len(SEEDS), (4, 4, 4), id="square")]
ACT_CASES = [pytest.param(seed, ACT_SHAPE, id=f"seed{seed}") for seed in SEEDS] + [
    pytest.param(len(SEEDS), (4, 4), id="square")]
MODEL_BATCH = 4
MODEL_LATENT = 6  # a tiny hidden layer keeps the whole-model check cheap
MODEL_DIRECTIONS = 4  # random directions per weight matrix in the model check
INPUT_DIMS = 784
NUM_CLASSES = 10
DOUBLE = 2.0  # the shape checks compare a layer's output for x and for DOUBLE * x

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


def _require_gradient(report, what: str, figure, wrt: str = "its input", *, received=None,
                      expected=None, mistakes=()) -> None:
    """Passes, or fails saying where the gradient is wrong and which known mistake it is."""
    # A degenerate check has no meaningful error to show (0 against 0 is not a pass).
    error = None if report.degenerate else report.relative_error
    figure("gradient_error", {"check": what, "relative_error": error,
                              "tolerance": report.tolerance})
    if report.passed:
        return
    message = failure_message(report, what, wrt=wrt)
    if report.degenerate or received is None:
        raise AssertionError(message)
    worst = mlp_diagnoses.worst_entries(received, expected)
    if worst:
        message = _("{message}; largest differences: {worst}", message=message, worst=worst)
    difference = mlp_diagnoses.difference_figure(what, received, expected)
    if difference is not None:
        figure("gradient_difference", difference)
    fail(message, received, mistakes)


def _mistakes(build) -> list:
    """The known mistakes for a check, or none when the student's data cannot feed them."""
    try:
        return build()
    except Exception:  # noqa: BLE001 - a forward that returned junk has nothing to diagnose
        return []


def _shape(received, shape: tuple[int, ...], what: str, mistakes=()) -> np.ndarray:
    """`assert_shape`, naming the known mistake a wrong shape matches (a transpose)."""
    try:
        return assert_shape(received, shape, what)
    except AssertionError as error:
        fail(str(error), received, mistakes)


def _require_dependence(first, second, what: str, inputs: str) -> None:
    first, second = as_array(first, what), as_array(second, what)
    assert first.shape != second.shape or not np.allclose(first, second), _(
        "{what} returned the same output for {inputs}; expected an output computed from its "
        "input", what=what, inputs=inputs)


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        kind = type(received).__name__
        raise AssertionError(_("{what} returned {kind}; expected a pair (grad_X, grad_W)",
                               what=what, kind=kind))
    return received


def _one_hot(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return np.eye(classes)[rng.integers(0, classes, size=n)]


def test_layer_output_shapes(student):
    m = student.mlp_numpy
    n, d, k = FC_SHAPE
    x, w = np.ones((n, d)), np.ones((d, k))
    assert_shape(m.FullConnectionLayer().forward(x, w), (n, k),
                 _("`FullConnectionLayer.forward(X, W)` with X {x_shape} and W {w_shape}",
                   x_shape=x.shape, w_shape=w.shape))
    layer = m.FullConnectionLayer()
    layer.forward(x, w)
    grad_x, grad_w = _pair(layer.backward(np.ones((n, k))), "`FullConnectionLayer.backward`")
    known = mlp_diagnoses.fc_backward(x, w, np.ones((n, k)))
    _shape(grad_x, x.shape, "`FullConnectionLayer.backward` (grad_X)", known["grad_X"])
    _shape(grad_w, w.shape, "`FullConnectionLayer.backward` (grad_W)", known["grad_W"])
    logits = np.arange(15.0).reshape(ACT_SHAPE)
    relu = assert_shape(m.Relu().forward(logits), ACT_SHAPE,
                        _("`Relu.forward` on shape {shape}", shape=ACT_SHAPE))
    probs = assert_shape(m.Softmax().forward(logits), ACT_SHAPE,
                         _("`Softmax.forward` on shape {shape}", shape=ACT_SHAPE))
    sums = probs.sum(axis=1)
    assert np.allclose(sums, 1.0), _(
        "`Softmax.forward`: each row must sum to 1; row sums are {sums}",
        sums=np.round(sums, 4).tolist())
    # A layer that returns the same output whatever its input has the right shape and
    # nothing else: it earns nothing here.
    _require_dependence(m.FullConnectionLayer().forward(x, w),
                        m.FullConnectionLayer().forward(DOUBLE * x, w),
                        "`FullConnectionLayer.forward`", _("X = ones and X = 2 * ones"))
    _require_dependence(relu, m.Relu().forward(logits + 1.0), "`Relu.forward`",
                        _("x and x + 1 (all positive)"))
    _require_dependence(probs, m.Softmax().forward(logits * DOUBLE), "`Softmax.forward`",
                        _("x and 2 * x"))


def test_model_weight_shapes(student):
    model = student.mlp_numpy.FullConnectionModel(MODEL_LATENT)
    if as_array(model.W1, "`W1`").shape == (INPUT_DIMS, MODEL_LATENT):
        raise Diagnosed(_("`FullConnectionModel({latent}).W1` has shape ({inputs}, {latent}); "
                          "expected ({rows}, {latent})", latent=MODEL_LATENT, inputs=INPUT_DIMS,
                          rows=INPUT_DIMS + 1), mlp_diagnoses.NO_BIAS_COLUMN)
    w1 = assert_shape(model.W1, (INPUT_DIMS + 1, MODEL_LATENT),
                      _("`FullConnectionModel({latent}).W1` (784 pixels + the bias column)",
                        latent=MODEL_LATENT))
    w2 = assert_shape(model.W2, (MODEL_LATENT, NUM_CLASSES),
                      f"`FullConnectionModel({MODEL_LATENT}).W2`")
    for name, weight in (("W1", w1), ("W2", w2)):
        # Equal weights make every hidden unit compute the same thing: nothing to learn with.
        if np.ptp(weight) == 0:
            raise Diagnosed(
                _("`FullConnectionModel({latent}).{name}` has every entry equal to {value}; "
                  "expected random initial weights", latent=MODEL_LATENT, name=name,
                  value=f"{float(weight.flat[0]):g}"),
                mlp_diagnoses.EQUAL_INITIAL_WEIGHTS)


@pytest.mark.parametrize("seed, shape", FC_CASES)
def test_fc_backward_matches_numerical_gradient(student, figure, seed, shape):
    rng = np.random.default_rng(seed)
    n, d, k = shape
    x, w, upstream = rng.normal(size=(n, d)), rng.normal(size=(d, k)), rng.normal(size=(n, k))
    layer = student.mlp_numpy.FullConnectionLayer()
    layer.forward(x, w)
    grad_x, grad_w = _pair(layer.backward(upstream), "`FullConnectionLayer.backward`")
    known = mlp_diagnoses.fc_backward(x, w, upstream)
    grad_x = _shape(grad_x, x.shape, "`FullConnectionLayer.backward` (grad_X)", known["grad_X"])
    grad_w = _shape(grad_w, w.shape, "`FullConnectionLayer.backward` (grad_W)", known["grad_W"])
    probe = student.mlp_numpy.FullConnectionLayer()
    expected_x = numerical_vjp(lambda v: probe.forward(v, w), x, upstream)
    expected_w = numerical_vjp(lambda v: probe.forward(x, v), w, upstream)
    _require_gradient(check_gradient("grad_X", grad_x, expected_x),
                      "`FullConnectionLayer.backward` (grad_X)", figure, wrt="X",
                      received=grad_x, expected=expected_x, mistakes=known["grad_X"])
    _require_gradient(check_gradient("grad_W", grad_w, expected_w),
                      "`FullConnectionLayer.backward` (grad_W)", figure, wrt="W",
                      received=grad_w, expected=expected_w, mistakes=known["grad_W"])


@pytest.mark.parametrize("seed, shape", ACT_CASES)
def test_relu_backward_matches_numerical_gradient(student, figure, seed, shape):
    rng = np.random.default_rng(seed)
    x = away_from_kinks(rng.normal(size=shape))  # no entry within KINK_MARGIN of 0
    upstream = rng.normal(size=shape)
    layer = student.mlp_numpy.Relu()
    layer.forward(x)
    grad = assert_shape(layer.backward(upstream), x.shape, "`Relu.backward`")
    probe = student.mlp_numpy.Relu()
    expected = numerical_vjp(probe.forward, x, upstream)
    _require_gradient(check_gradient("Relu", grad, expected), "`Relu.backward`", figure,
                      received=grad, expected=expected,
                      mistakes=mlp_diagnoses.relu_backward(x, upstream))


@pytest.mark.parametrize("seed, shape", ACT_CASES)
def test_softmax_backward_matches_numerical_gradient(student, figure, seed, shape):
    rng = np.random.default_rng(seed)
    x, upstream = rng.normal(size=shape), rng.normal(size=shape)
    layer = student.mlp_numpy.Softmax()
    s = layer.forward(x)
    grad = assert_shape(layer.backward(upstream), x.shape, "`Softmax.backward`")
    probe = student.mlp_numpy.Softmax()
    expected = numerical_vjp(probe.forward, x, upstream)
    known = _mistakes(lambda: mlp_diagnoses.softmax_backward(
        np.asarray(s, dtype=np.float64), upstream))
    _require_gradient(check_gradient("Softmax", grad, expected), "`Softmax.backward`", figure,
                      received=grad, expected=expected, mistakes=known)


@pytest.mark.parametrize("seed, shape", ACT_CASES)
def test_cross_entropy_backward_matches_numerical_gradient(student, figure, seed, shape):
    rng = np.random.default_rng(seed)
    n, c = shape
    p = rng.uniform(0.05, 1.0, size=(n, c))
    p /= p.sum(axis=1, keepdims=True)  # probabilities well away from 0
    y = _one_hot(rng, n, c)
    layer = student.mlp_numpy.CrossEntropy()
    layer.forward(p, y)
    grad = assert_shape(layer.backward(y), p.shape, "`CrossEntropy.backward`")
    probe = student.mlp_numpy.CrossEntropy()
    expected = numerical_gradient(lambda v: as_number(probe.forward(v, y),
                                                      "`CrossEntropy.forward`"), p)
    _require_gradient(check_gradient("CrossEntropy", grad, expected),
                      "`CrossEntropy.backward`", figure, wrt="p", received=grad,
                      expected=expected, mistakes=mlp_diagnoses.cross_entropy_backward(p, y))


@pytest.mark.parametrize("seed", SEEDS)
def test_model_gradients_match_numerical_gradient(student, figure, credit, seed):
    """W1_grad and W2_grad against directional derivatives of the model's own loss.

    Perturbing every entry of W1 would take thousands of calls; instead, for a few
    random directions V, (L(W + hV) - L(W - hV)) / 2h must equal <grad, V>.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(MODEL_BATCH, INPUT_DIMS))
    y = _one_hot(rng, MODEL_BATCH, NUM_CLASSES)
    inputs = np.concatenate([x, np.ones((MODEL_BATCH, 1))], axis=1)
    while True:  # redraw W1 until no hidden pre-activation is near the ReLU kink
        w1 = rng.normal(size=(INPUT_DIMS + 1, MODEL_LATENT)) / np.sqrt(INPUT_DIMS)
        if np.min(np.abs(inputs @ w1)) > 100 * KINK_MARGIN:
            break
    w2 = rng.normal(size=(MODEL_LATENT, NUM_CLASSES))
    model = student.mlp_numpy.FullConnectionModel(MODEL_LATENT)
    model.W1, model.W2 = w1, w2
    model.forward(x, y)
    model.backward(y)
    grads = {"W1": assert_shape(model.W1_grad, w1.shape, "`FullConnectionModel.W1_grad`"),
             "W2": assert_shape(model.W2_grad, w2.shape, "`FullConnectionModel.W2_grad`")}
    # Error carried forward: a model whose gradients are those of its own layers, composed
    # one by one, is right even when a layer is wrong (that layer's check charges it).
    own = compose(student.mlp_numpy, x, y, w1, w2)
    composes = own is not None and own.learns and all(
        agrees(grads[name], own.stages[f"{name}_grad"]) for name in grads)

    def loss(w1_value: np.ndarray, w2_value: np.ndarray) -> float:
        model.W1, model.W2 = w1_value, w2_value
        model.forward(x, y)
        return as_number(model.loss, "`FullConnectionModel.loss`")

    for name, weight in (("W1", w1), ("W2", w2)):
        analytic, numerical = [], []
        for _direction in range(MODEL_DIRECTIONS):
            v = rng.normal(size=weight.shape)
            v /= np.linalg.norm(v)
            moved = [(w1 + s * STEP * v, w2) if name == "W1" else (w1, w2 + s * STEP * v)
                     for s in (1, -1)]
            numerical.append((loss(*moved[0]) - loss(*moved[1])) / (2 * STEP))
            analytic.append(float(np.sum(grads[name] * v)))
        report = check_gradient(name, np.array(analytic), np.array(numerical))
        if not report.passed and composes:
            credit.note(_("`FullConnectionModel.backward` ({name}_grad): your model composes "
                          "your layers correctly; the error is in a layer's backward (see "
                          "fc_backward, relu_backward, softmax_backward, "
                          "cross_entropy_backward)", name=name))
            continue
        _require_gradient(report, f"`FullConnectionModel.backward` ({name}_grad)", figure,
                          wrt=name)
