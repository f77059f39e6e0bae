"""Tests for reference/mlp_numpy.py: gradient checks of every backward, the model, training."""

import numpy as np
import pytest

from grader import data
from grader.checks.gradients import (
    KINK_MARGIN,
    away_from_kinks,
    check_gradient,
    numerical_gradient,
    numerical_vjp,
)
from reference import mlp_numpy as mn

SEEDS = (0, 1, 2)
N, D, M = 3, 4, 5  # small, non-square shapes: a transposed matrix gives a shape error
# The slow test's budget and its threshold per dataset (chance is 0.1).
QUICK_TRAIN_SIZE = 3_000
QUICK_EPOCHS = 2
QUICK_THRESHOLD = {data.FASHION_MNIST: 0.6, data.MNIST: 0.8}


def one_hot(rng, n, classes=mn.NUM_CLASSES):
    return np.eye(classes)[rng.integers(0, classes, size=n)]


def assert_passes(name, analytic, numerical):
    report = check_gradient(name, analytic, numerical)
    assert report.passed, f"{name}: relative error {report.relative_error:.3g} > {report.tolerance}"


# ---- layers: backward against centred differences of forward --------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_full_connection_layer_gradients(seed):
    rng = np.random.default_rng(seed)
    X, W, upstream = rng.normal(size=(N, D)), rng.normal(size=(D, M)), rng.normal(size=(N, M))
    layer = mn.FullConnectionLayer()
    H = layer.forward(X, W)
    np.testing.assert_allclose(H, X @ W, rtol=1e-12)
    grad_X, grad_W = layer.backward(upstream)
    assert grad_X.shape == (N, D) and grad_W.shape == (D, M)
    assert_passes("grad_X", grad_X,
                  numerical_vjp(lambda x: mn.FullConnectionLayer().forward(x, W), X, upstream))
    assert_passes("grad_W", grad_W,
                  numerical_vjp(lambda w: mn.FullConnectionLayer().forward(X, w), W, upstream))


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_gradient(seed):
    rng = np.random.default_rng(seed)
    x = away_from_kinks(rng.normal(size=(N, M)))
    upstream = rng.normal(size=(N, M))
    relu = mn.Relu()
    np.testing.assert_array_equal(relu.forward(x), np.maximum(x, 0))
    assert_passes("Relu", relu.backward(upstream),
                  numerical_vjp(lambda v: mn.Relu().forward(v), x, upstream))


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_gradient(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(N, M))
    upstream = rng.normal(size=(N, M))
    softmax = mn.Softmax()
    s = softmax.forward(x)
    np.testing.assert_allclose(s, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), rtol=1e-12)
    assert_passes("Softmax", softmax.backward(upstream),
                  numerical_vjp(lambda v: mn.Softmax().forward(v), x, upstream))


def test_softmax_forward_is_stable_and_row_wise():
    x = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = mn.Softmax().forward(x)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_value_and_gradient(seed):
    rng = np.random.default_rng(seed)
    # Probabilities near 0.1: -1/p curves sharply near 0, and centred differences with
    # STEP = 1e-5 would then miss 1e-7 (truncation error ~ (STEP / p)**2).
    p = mn.Softmax().forward(rng.normal(scale=0.3, size=(N, mn.NUM_CLASSES)))
    y = one_hot(rng, N)
    loss = mn.CrossEntropy()
    value = loss.forward(p, y)
    np.testing.assert_allclose(value, -np.mean(np.log(p[y.astype(bool)])), rtol=1e-9)
    grad = loss.backward(y)
    assert_passes("CrossEntropy", grad,
                  numerical_gradient(lambda q: mn.CrossEntropy().forward(q, y), p))
    # The 1/N of the mean is part of the gradient.
    np.testing.assert_allclose(grad, -y / (p + mn.EPSILON) / N, rtol=1e-12)


def test_cross_entropy_of_a_zero_probability_is_finite():
    p = np.array([[0.0, 1.0]])
    y = np.array([[1.0, 0.0]])
    loss = mn.CrossEntropy()
    with np.errstate(all="raise"):
        assert np.isfinite(loss.forward(p, y))
        assert np.all(np.isfinite(loss.backward(y)))


# ---- the whole model ------------------------------------------------------------------------

def model_and_batch(seed, latent_dims, n=4):
    """A model and a batch whose hidden pre-activations are all away from ReLU's kink."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        model = mn.FullConnectionModel(latent_dims, rng=rng)
        X = rng.uniform(size=(n, mn.INPUT_DIMS))
        labels = one_hot(rng, n)
        model.forward(X, labels)
        if np.min(np.abs(model.h1)) > KINK_MARGIN:
            return model, X, labels
    raise AssertionError("no draw kept the pre-activations away from 0")


def model_loss(model, X, labels, **weights):
    """The model's loss with some weights replaced (the model's own weights are restored)."""
    saved = {name: getattr(model, name) for name in weights}
    for name, value in weights.items():
        setattr(model, name, value)
    model.forward(X, labels)
    for name, value in saved.items():
        setattr(model, name, value)
    return model.loss


@pytest.mark.parametrize("seed,latent_dims", [(0, 3), (1, 2), (2, 5)])
def test_model_gradients_match_the_numerical_gradients_of_its_loss(seed, latent_dims):
    model, X, labels = model_and_batch(seed, latent_dims)
    model.forward(X, labels)
    model.backward(labels)
    assert model.W1_grad.shape == (mn.INPUT_DIMS + 1, latent_dims)
    assert model.W2_grad.shape == (latent_dims, mn.NUM_CLASSES)
    W1, W2 = model.W1.copy(), model.W2.copy()
    assert_passes("W2_grad", model.W2_grad,
                  numerical_gradient(lambda w: model_loss(model, X, labels, W2=w), W2))
    assert_passes("W1_grad", model.W1_grad,
                  numerical_gradient(lambda w: model_loss(model, X, labels, W1=w), W1))


def test_model_forward_attributes_and_bias_column():
    rng = np.random.default_rng(3)
    model = mn.FullConnectionModel(7, rng=rng)
    X, labels = rng.uniform(size=(6, mn.INPUT_DIMS)), one_hot(rng, 6)
    model.forward(X, labels)
    bias_free = X @ model.W1[:-1] + model.W1[-1]  # the last row of W1 is the bias
    np.testing.assert_allclose(model.h1, bias_free, rtol=1e-10)
    # ReLU of the model's own h1 exactly; against bias_free (another BLAS path) within rounding
    np.testing.assert_array_equal(model.h1_relu, np.maximum(model.h1, 0))
    np.testing.assert_allclose(model.h1_relu, np.maximum(bias_free, 0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.h2, model.h1_relu @ model.W2, rtol=1e-10)
    np.testing.assert_allclose(model.h2_soft.sum(axis=1), 1.0)
    assert model.h2_soft.shape == (6, mn.NUM_CLASSES)
    assert np.ndim(model.loss) == 0 and model.loss > 0


def test_model_is_he_initialised_and_seedable():
    model = mn.FullConnectionModel(300, rng=0)
    assert model.W1.shape == (785, 300) and model.W2.shape == (300, 10)
    assert model.W1.std() == pytest.approx(np.sqrt(2 / 785), rel=0.02)
    assert model.W2.std() == pytest.approx(np.sqrt(2 / 300), rel=0.05)
    assert abs(model.W1.mean()) < 1e-3
    np.testing.assert_array_equal(mn.FullConnectionModel(5, rng=4).W1,
                                  mn.FullConnectionModel(5, rng=4).W1)
    assert mn.FullConnectionModel(5).W1.shape == (785, 5)  # the lecture's call still works


def test_compute_accuracy():
    labels = np.eye(10)[[0, 1, 2, 3]]
    prob = np.full((4, 10), 0.05)
    prob[[0, 1, 2, 3], [0, 1, 9, 3]] = 0.6
    assert mn.computeAccuracy(prob, labels) == pytest.approx(0.75)
    assert mn.computeAccuracy(labels, labels) == 1.0


def test_preprocess():
    images = np.array([np.zeros((28, 28)), np.full((28, 28), 255)], dtype=np.uint8)
    x, y = mn.preprocess(images, np.array([3, 9], dtype=np.uint8))
    assert x.shape == (2, 784) and x.dtype.kind == "f"
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(y, np.eye(10)[[3, 9]])


def test_train_one_step_lowers_the_loss():
    rng = np.random.default_rng(5)
    model = mn.FullConnectionModel(20, rng=rng)
    X, labels = rng.uniform(size=(32, mn.INPUT_DIMS)), one_hot(rng, 32)
    first, _ = mn.train_one_step(model, X, labels, learning_rate=0.1)
    for _ in range(20):
        last, _ = mn.train_one_step(model, X, labels, learning_rate=0.1)
    assert last < first


# ---- training on real data ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_split():
    ds = data.load()
    x_train, y_train = mn.preprocess(ds.x_train[:QUICK_TRAIN_SIZE], ds.y_train[:QUICK_TRAIN_SIZE])
    x_val, y_val = mn.preprocess(ds.x_validation[:1000], ds.y_validation[:1000])
    x_test, y_test = mn.preprocess(ds.x_test, ds.y_test)
    return ds.name, x_train, y_train, x_val, y_val, x_test, y_test


def test_train_picks_the_best_validation_accuracy_and_is_deterministic(small_split, capsys):
    _, x_train, y_train, x_val, y_val, _, _ = small_split
    x_train, y_train = x_train[:500], y_train[:500]
    kwargs = dict(epochs=1, batch_size=50, learning_rate=0.1, seed=7, verbose=False)
    best = mn.train(x_train, y_train, x_val, y_val, latent_dims=(2, 30), **kwargs)
    alone = {d: mn.train(x_train, y_train, x_val, y_val, latent_dims=(d,), **kwargs)
             for d in (2, 30)}
    accuracy = {d: mn.test(m, x_val, y_val) for d, m in alone.items()}
    expected = max(accuracy, key=accuracy.get)
    # Same seed, same run: identical up to rounding (another run differs everywhere)
    np.testing.assert_allclose(best.W1, alone[expected].W1, rtol=1e-12, atol=1e-15)
    assert capsys.readouterr().out == ""  # verbose=False prints nothing
    assert mn.test(best, x_val, y_val) == max(accuracy.values())


@pytest.mark.slow
def test_a_short_run_learns(small_split):
    name, x_train, y_train, x_val, y_val, x_test, y_test = small_split
    model = mn.train(x_train, y_train, x_val, y_val, latent_dims=(100,), epochs=QUICK_EPOCHS,
                     verbose=False)
    accuracy = mn.test(model, x_test, y_test)
    assert accuracy > QUICK_THRESHOLD[name], f"test accuracy {accuracy:.3f} on {name}"


def test_run_lecture_quick(small_split):
    epochs, accuracy = mn.run_lecture(data.load(), quick=True)  # the grader's dataset
    assert epochs == mn.QUICK_EPOCHS
    assert 0.1 < accuracy <= 1.0
