"""Tests for grader.checks.mlp_weights: the grader's own forward pass of a trained numpy MLP."""

import numpy as np
import pytest

from grader.checks.mlp_weights import BATCH, predict, trained_weights
from reference import mlp_numpy as ref

WHAT = "the model `train` returned"


def _weights(hidden: int = 7, rows: int = 785, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, hidden)) * 0.05, rng.normal(size=(hidden, 10))


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def test_predictions_are_the_lectures_forward_pass():
    w1, w2 = _weights()
    images = _images(2 * BATCH + 3)  # several batches and a short last one
    model = ref.FullConnectionModel(7, rng=0)
    model.W1, model.W2 = w1, w2
    x, y = ref.preprocess(images, np.zeros(len(images), dtype=np.uint8))
    model.forward(x.astype(np.float64), y)
    expected = np.argmax(model.h2_soft, axis=1)
    got = predict(trained_weights(w1, w2, hidden=7, what=WHAT), images)
    assert got.dtype == np.int64 and got.shape == (len(images),)
    np.testing.assert_array_equal(got, expected)


def test_a_model_without_the_bias_row_is_evaluated_without_the_bias_column():
    w1, w2 = _weights(rows=784)
    images = _images(20)
    weights = trained_weights(w1, w2, hidden=7, what=WHAT)
    assert not weights.has_bias
    x = images.reshape(20, 784) / 255.0
    np.testing.assert_array_equal(predict(weights, images),
                                  np.argmax(np.maximum(x @ w1, 0) @ w2, axis=1))


def test_float32_weights_are_read_as_float64():
    w1, w2 = _weights()
    weights = trained_weights(w1.astype(np.float32), w2.astype(np.float32), hidden=7, what=WHAT)
    assert weights.w1.dtype == np.float64 and weights.w2.dtype == np.float64


@pytest.mark.parametrize("w1_shape, w2_shape, message", [
    ((785, 300), (300, 10), r"`W1` has shape \(785, 300\); expected \(785, 100\)"),
    ((786, 100), (100, 10), r"`W1` has shape \(786, 100\); expected \(785, 100\)"),
    ((100, 785), (100, 10), r"`W1` has shape \(100, 785\)"),
    ((785,), (100, 10), r"`W1` has shape \(785,\)"),
    ((785, 100), (10, 100), r"`W2` has shape \(10, 100\); expected \(100, 10\)"),
])
def test_weights_of_another_network_are_refused_with_their_shape(w1_shape, w2_shape, message):
    with pytest.raises(AssertionError, match=f"^{WHAT}: {message}"):
        trained_weights(np.zeros(w1_shape), np.zeros(w2_shape), hidden=100, what=WHAT)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(bad):
    w1, w2 = _weights()
    w2[3, 4] = bad
    w2[0, 0] = bad
    with pytest.raises(AssertionError, match=r"`W2` holds 2 NaN or infinite values; expected "
                                             r"finite weights \(did training diverge\?\)"):
        trained_weights(w1, w2, hidden=7, what=WHAT)


@pytest.mark.parametrize("value, shown", [
    (None, "None"),
    ("weights", "str 'weights'"),
    (np.array(["a", "b"]), "dtype <U1"),
])
def test_weights_that_are_not_numeric_arrays_are_refused(value, shown):
    _, w2 = _weights()
    with pytest.raises(AssertionError, match=f"{WHAT}: `W1`.*{shown}"):
        trained_weights(value, w2, hidden=7, what=WHAT)


def test_lecture_inputs_are_the_reference_preprocessing():
    """The accuracy test and `grader calibrate` prepare data grader-side (the grader does not
    import the reference): exactly what the lecture's preprocess gives."""
    from grader.checks.mlp_weights import lecture_inputs

    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(9, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=9).astype(np.uint8)
    for mine, theirs in zip(lecture_inputs(images, labels), ref.preprocess(images, labels),
                            strict=True):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
