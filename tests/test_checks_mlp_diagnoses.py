"""`grader.checks.mlp_diagnoses`: each known mistake of the numpy MLP is named, and only it.

Each case writes the mistake the way a student does (its own code here, not the module's
prediction), runs it on the check's inputs, and expects `fail` to raise `Diagnosed` carrying
that mistake's id; the correct answer matches no mistake.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference.mlp_numpy as ref
from grader.checks import mlp_diagnoses as known
from grader.checks.diagnose import Diagnosed, fail, matching_mistake

RNG = np.random.default_rng(0)
X, W, UP = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 5)), RNG.normal(size=(3, 5))
SQUARE_X, SQUARE_W, SQUARE_UP = RNG.normal(size=(4, 4)), RNG.normal(size=(4, 4)), RNG.normal(
    size=(4, 4))
LOGITS, GRAD = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
S = ref.Softmax().forward(LOGITS)
P = RNG.uniform(0.05, 1.0, size=(3, 5))
P /= P.sum(axis=1, keepdims=True)
Y = np.eye(5)[[0, 3, 1]]


def _diagnosis(received, mistakes) -> str:
    with pytest.raises(AssertionError) as raised:
        fail("the check failed", received, mistakes)
    return raised.value.mistake if isinstance(raised.value, Diagnosed) else ""


@pytest.mark.parametrize("mistake, grad_x, grad_w", [
    ("fc_grad_w_transposed", UP @ W.T, UP.T @ X),
    ("fc_grad_w_divided_by_n", UP @ W.T, X.T @ UP / 3),
    ("sign_error", UP @ W.T, -(X.T @ UP)),
])
def test_fc_backward_mistakes_are_named(mistake, grad_x, grad_w):
    mistakes = known.fc_backward(X, W, UP)
    assert _diagnosis(grad_w, mistakes["grad_W"]) == mistake
    assert matching_mistake(UP @ W.T, mistakes["grad_X"]) is None


def test_a_square_transposed_grad_w_is_named():
    mistakes = known.fc_backward(SQUARE_X, SQUARE_W, SQUARE_UP)
    assert _diagnosis(SQUARE_UP.T @ SQUARE_X, mistakes["grad_W"]) == "fc_grad_w_transposed"
    assert _diagnosis(SQUARE_UP @ SQUARE_W, mistakes["grad_X"]) == "fc_grad_x_not_transposed"
    assert matching_mistake(SQUARE_X.T @ SQUARE_UP, mistakes["grad_W"]) is None


@pytest.mark.parametrize("mistake, answer", [
    ("relu_mask_from_upstream", GRAD * (GRAD > 0)),
    ("relu_backward_no_mask", GRAD),
    ("relu_mask_inverted", GRAD * (LOGITS <= 0)),
    ("sign_error", -GRAD * (LOGITS > 0)),
])
def test_relu_backward_mistakes_are_named(mistake, answer):
    assert _diagnosis(answer, known.relu_backward(LOGITS, GRAD)) == mistake


def test_softmax_backward_mistakes_are_named():
    mistakes = known.softmax_backward(S, GRAD)
    diagonal = np.stack([np.diag(s * (1 - s)) @ g for s, g in zip(S, GRAD, strict=True)])
    assert _diagnosis(diagonal, mistakes) == "softmax_backward_diagonal_only"
    batch = S * (GRAD - np.sum(GRAD * S, axis=0, keepdims=True))
    assert _diagnosis(batch, mistakes) == "softmax_backward_wrong_axis"
    assert _diagnosis(GRAD, mistakes) == "softmax_backward_identity"
    layer = ref.Softmax()
    layer.forward(LOGITS)
    correct = layer.backward(GRAD)
    assert _diagnosis(-correct, mistakes) == "sign_error"
    assert matching_mistake(correct, mistakes) is None


def test_cross_entropy_mistakes_are_named():
    assert _diagnosis(-Y / P, known.cross_entropy_backward(P, Y)) == \
        "cross_entropy_grad_without_mean"
    assert _diagnosis(Y / P / 3, known.cross_entropy_backward(P, Y)) == "sign_error"
    total = float(-np.sum(Y * np.log(P)))
    assert _diagnosis(total, known.cross_entropy_forward(P, Y)) == "cross_entropy_sum_not_mean"
    assert matching_mistake(total / 3, known.cross_entropy_forward(P, Y)) is None


def test_forward_and_step_mistakes_are_named():
    e = np.exp(LOGITS)
    assert _diagnosis(e / e.sum(axis=0), known.softmax_forward(LOGITS)) == "softmax_wrong_axis"
    x = RNG.uniform(size=(2, 784))
    assert _diagnosis(x * 255, known.preprocess(x)) == "preprocess_unscaled"
    scores, labels = RNG.normal(size=(40, 10)), np.eye(10)[RNG.integers(0, 10, size=40)]
    hits = np.argmax(scores, axis=1) == np.argmax(labels, axis=1)
    assert _diagnosis(int(hits.sum()), known.accuracy(scores, labels)) == \
        "accuracy_counts_not_fraction"
    wrong_axis = np.mean(np.argmax(scores, axis=0) == np.argmax(labels, axis=0))
    assert _diagnosis(wrong_axis, known.accuracy(scores, labels)) == "accuracy_argmax_wrong_axis"
    w, grad = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    assert _diagnosis(w + 0.1 * grad, known.train_step(w, grad, 0.1, w + 0.1 * grad)) == \
        "step_gradient_ascent"
    for constant in (1.0, 0.3):  # the whole gradient, or the module's default rate
        assert _diagnosis(w - constant * grad, known.train_step(
            w, grad, 0.1, w - constant * grad)) == "step_ignores_learning_rate"
    assert _diagnosis(w, known.train_step(w, grad, 0.1, w)) == "step_skips_weight"
    assert matching_mistake(w - 0.1 * grad, known.train_step(w, grad, 0.1)) is None


def test_every_sentence_is_a_diagnosis_with_a_formula():
    mistakes = [*known.fc_backward(X, W, UP)["grad_X"], *known.fc_backward(X, W, UP)["grad_W"],
                *known.relu_backward(LOGITS, GRAD), *known.softmax_backward(S, GRAD),
                *known.cross_entropy_backward(P, Y), *known.cross_entropy_forward(P, Y),
                *known.softmax_forward(LOGITS), *known.preprocess(X),
                *known.accuracy(S, Y), *known.train_step(W, W, 0.1), known.LOG_OF_ZERO,
                known.SOFTMAX_OVERFLOW, known.NO_BIAS_COLUMN, known.EQUAL_INITIAL_WEIGHTS,
                known.STEP_KEEPS_STATE, known.SEARCH_NOT_BY_VALIDATION]
    for mistake in mistakes:
        assert mistake.sentence.startswith("Diagnosis: your "), mistake.id
        assert mistake.sentence.endswith("."), mistake.id
        assert "=" in mistake.sentence or "<-" in mistake.sentence, mistake.id


def test_worst_entries_show_index_received_and_expected_worst_first():
    expected = np.zeros((3, 4))
    received = expected.copy()
    received[2, 1], received[0, 3] = 5.0, -2.0
    text = known.worst_entries(received, expected, count=2)
    assert text == "[2, 1]: received 5, expected 0; [0, 3]: received -2, expected 0"
    received[1, 1] = np.nan
    assert known.worst_entries(received, expected, count=1).startswith("[1, 1]: received nan")
    assert known.worst_entries(np.zeros((4, 3)), expected) == ""


def test_difference_figure_is_small_plain_and_finite():
    received = np.arange(200.0).reshape(10, 20)
    received[0, 0] = np.inf
    figure = known.difference_figure("`Relu.backward`", received, np.zeros((10, 20)))
    assert figure["shape"] == [10, 20] and figure["truncated"] is True
    assert len(figure["rows"]) == known.FIGURE_SIDE
    assert all(len(row) == known.FIGURE_SIDE for row in figure["rows"])
    assert figure["rows"][0][0] is None and figure["rows"][1][2] == 22.0
    assert known.difference_figure("x", np.zeros(3), np.zeros(4)) is None


def test_he_init_mistakes_predict_the_std_each_way_of_drawing_gives():
    """A W1 scaled by its fan-out is named as such, with the lecture's formula."""
    rng = np.random.default_rng(0)
    fan_out = rng.normal(size=(785, 64)) / np.sqrt(64 / 2)
    mistake = matching_mistake(float(np.std(fan_out)),
                               known.he_init_std("W1", 785, 64), rtol=0.15)
    assert mistake is not None and mistake.id == "he_init_fan_out"
    assert "np.sqrt(785 / 2)" in mistake.sentence and "np.sqrt(64 / 2)" in mistake.sentence
    correct = rng.normal(size=(785, 64)) / np.sqrt(785 / 2)
    assert matching_mistake(float(np.std(correct)),
                            known.he_init_std("W1", 785, 64), rtol=0.15) is None
