"""Known mistakes of the numpy MLP chapter, predicted grader-side (see `checks.diagnose`).

Each function takes the inputs a check gave the student's code (plain arrays, float64) and
returns the `Mistake`s whose predictions the check compares with the student's answer. The
predictions use the student's own forward output where the lecture's backward formula needs
it (softmax's s), so a diagnosis of a backward pass never depends on the forward being right.
The formulas quoted are the lecture's (shared/lecture, section on the numpy MLP).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.diagnose import Mistake
from grader.i18n import Domain, join_clauses, lazy

_, _n = Domain("checks").functions()

EPSILON = 1e-12  # the lecture's guard in log(p + EPSILON) and -y / (p + EPSILON)
WORST_SHOWN = 3  # entries listed in a gradient mismatch message
FIGURE_SIDE = 8  # the difference figure shows at most FIGURE_SIDE x FIGURE_SIDE entries


def _sign(correct: np.ndarray, what: str) -> Mistake:
    return Mistake("sign_error", _("Diagnosis: your {what} has the opposite sign of the "
                                   "gradient: every entry is the negative of the chain rule's "
                                   "dL/dx = dL/dy * dy/dx (a minus sign too many or too few).",
                                   what=what),
                   lambda: -correct)


def fc_backward(x: np.ndarray, w: np.ndarray, upstream: np.ndarray) -> dict[str, list[Mistake]]:
    """Mistakes of `FullConnectionLayer.backward` for H = X W.

    Args:
        x: (N, D) inputs; w: (D, M) weights; upstream: (N, M) dL/dH.

    Returns:
        {"grad_X": [...], "grad_W": [...]}: the mistakes of each returned gradient.
    """
    grad_x, grad_w = upstream @ w.T, x.T @ upstream
    n = x.shape[0]
    return {
        "grad_X": [
            Mistake("fc_grad_x_not_transposed", lazy("Diagnosis: your grad_X uses W where the "
                    "lecture uses its transpose: dL/dX = dL/dH W^T, shape (N, D)."),
                    lambda: upstream @ w),
            _sign(grad_x, "grad_X")],
        "grad_W": [
            Mistake("fc_grad_w_transposed", lazy("Diagnosis: your grad_W is transposed: it equals "
                    "dL/dH^T X, shape (M, D); the lecture's dL/dW = X^T dL/dH has W's shape "
                    "(D, M), whether or not W is square."), lambda: upstream.T @ x),
            Mistake("fc_grad_w_divided_by_n", lazy("Diagnosis: your grad_W is divided by the batch "
                    "size: dL/dH already carries the loss's 1/N, so dL/dW = X^T dL/dH with "
                    "no second 1/N."), lambda: grad_w / n),
            _sign(grad_w, "grad_W")]}


def relu_backward(x: np.ndarray, upstream: np.ndarray) -> list[Mistake]:
    """Mistakes of `Relu.backward` for y = max(0, x); x: (N, C), upstream: (N, C)."""
    correct = upstream * (x > 0)
    return [
        Mistake("relu_mask_from_upstream", lazy("Diagnosis: your Relu.backward masks with the "
                "incoming gradient (grad_y > 0) instead of the forward's input: "
                "dL/dx = dL/dy * (x > 0), the mask comes from x kept in mem."),
                lambda: upstream * (upstream > 0)),
        Mistake("relu_backward_no_mask", lazy("Diagnosis: your Relu.backward returns the incoming "
                "gradient unchanged: dL/dx = dL/dy * (x > 0) is zero where x <= 0."),
                lambda: upstream),
        Mistake("relu_mask_inverted", lazy("Diagnosis: your Relu.backward passes the gradient "
                "where x <= 0 and blocks it where x > 0: the mask is (x > 0)."),
                lambda: upstream * (x <= 0)),
        _sign(correct, "Relu.backward")]


def softmax_backward(s: np.ndarray, upstream: np.ndarray) -> list[Mistake]:
    """Mistakes of `Softmax.backward`.

    Args:
        s: (N, C) the student's own `Softmax.forward` output for the checked input.
        upstream: (N, C) dL/ds.
    """
    correct = s * (upstream - np.sum(upstream * s, axis=1, keepdims=True))
    return [
        Mistake("softmax_backward_diagonal_only", lazy("Diagnosis: your Softmax.backward keeps "
                "only the diagonal of the Jacobian, ds_i/dx_i = s_i (1 - s_i); every output "
                "depends on every input: ds_i/dx_j = s_i (delta_ij - s_j), so "
                "dL/dx_j = s_j (dL/ds_j - sum_i dL/ds_i s_i)."),
                lambda: upstream * s * (1 - s)),
        Mistake("softmax_backward_wrong_axis", lazy("Diagnosis: your Softmax.backward sums over "
                "the batch (axis 0) instead of the classes (axis 1): "
                "dL/dx_j = s_j (dL/ds_j - sum_i dL/ds_i s_i) sums over the classes i of one "
                "row."), lambda: s * (upstream - np.sum(upstream * s, axis=0, keepdims=True))),
        Mistake("softmax_backward_identity", lazy("Diagnosis: your Softmax.backward returns the "
                "incoming gradient unchanged; it must multiply by the Jacobian "
                "ds_i/dx_j = s_i (delta_ij - s_j)."), lambda: upstream),
        _sign(correct, "Softmax.backward")]


def cross_entropy_backward(p: np.ndarray, y: np.ndarray) -> list[Mistake]:
    """Mistakes of `CrossEntropy.backward`; p: (N, C) probabilities, y: (N, C) one-hot."""
    n = p.shape[0]
    return [
        Mistake("cross_entropy_grad_without_mean", lazy("Diagnosis: your CrossEntropy.backward "
                "misses the batch mean's 1/N: the loss is mean_n(-sum_c y log p), so "
                "dL/dp = -y / (p + EPSILON) / N."), lambda: -y / (p + EPSILON)),
        _sign(-y / (p + EPSILON) / n, "CrossEntropy.backward")]


def cross_entropy_forward(p: np.ndarray, y: np.ndarray) -> list[Mistake]:
    """Mistakes of `CrossEntropy.forward`; p: (N, C), y: (N, C) one-hot."""
    per_row = -np.sum(y * np.log(p + EPSILON), axis=1)
    return [
        Mistake("cross_entropy_sum_not_mean", lazy("Diagnosis: your CrossEntropy.forward sums "
                "the batch instead of averaging it: L = mean_n(-sum_c y_nc log p_nc), the "
                "1/N keeps the loss independent of the batch size."), lambda: per_row.sum()),
        _sign(per_row.mean(), "CrossEntropy.forward")]


LOG_OF_ZERO = Mistake(
    "cross_entropy_log_of_zero", lazy("Diagnosis: your CrossEntropy.forward takes log(0) where p "
    "is exactly 0 (a softmax that underflowed), and 0 * log(0) is nan: the lecture adds a "
    "small constant, L = mean_n(-sum_c y log(p + EPSILON))."), lambda: None)

SOFTMAX_OVERFLOW = Mistake(
    "softmax_overflow", lazy("Diagnosis: your Softmax.forward overflows: exp(1000) is inf in "
    "float64, and inf / inf is nan; subtract each row's maximum first, "
    "softmax(x) = exp(x - max(x)) / sum(exp(x - max(x))), which is the same function."),
    lambda: None)


def softmax_forward(x: np.ndarray) -> list[Mistake]:
    """Mistakes of `Softmax.forward`; x: (N, C) logits."""
    def along(axis: int) -> np.ndarray:
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)
    return [Mistake("softmax_wrong_axis", lazy("Diagnosis: your Softmax.forward normalises over "
                    "the batch (axis 0) instead of the classes (axis 1): each row (one image) "
                    "must sum to 1, softmax(x)_nc = exp(x_nc) / sum_k exp(x_nk)."),
                    lambda: along(0))]


def preprocess(expected_x: np.ndarray) -> list[Mistake]:
    """Mistakes of `preprocess`; expected_x: (N, 784) the correct pixels in [0, 1]."""
    return [Mistake("preprocess_unscaled", lazy(
        "Diagnosis: your preprocess keeps pixels in 0..255; "
                    "the lecture divides by 255 so inputs are in [0, 1] (x = images / 255)."),
                    lambda: expected_x * 255.0)]


def preprocess_labels(labels: np.ndarray) -> list[Mistake]:
    """Mistakes of `preprocess`'s labels; labels: (N,) the class numbers it was given."""
    return [Mistake("preprocess_labels_not_one_hot", lazy("Diagnosis: your preprocess returns the "
                    "labels as class numbers, shape (N,); the lecture one-hot encodes them, "
                    "y[n, c] = 1 if labels[n] == c else 0, shape (N, 10) "
                    "(np.eye(10)[labels]), because CrossEntropy multiplies y with log p."),
                    lambda: np.asarray(labels, dtype=np.float64))]


def step_reported_after_update(loss_after: float) -> list[Mistake]:
    """Mistakes of the loss a step returns; loss_after: the batch loss after the update."""
    return [Mistake("step_reports_after_update", lazy("Diagnosis: your train_one_step returns the "
                    "batch's loss after the update (a second forward pass); the lecture's step "
                    "returns the loss and accuracy of its own forward pass, before "
                    "W <- W - learning_rate * dL/dW changes the weights."),
                    lambda: loss_after)]


def accuracy(scores: np.ndarray, labels: np.ndarray) -> list[Mistake]:
    """Mistakes of `computeAccuracy`; scores, labels: (N, C)."""
    hits = np.argmax(scores, axis=1) == np.argmax(labels, axis=1)
    return [Mistake("accuracy_counts_not_fraction", lazy("Diagnosis: your computeAccuracy returns "
                    "the number of correct predictions, not their fraction: "
                    "accuracy = mean(argmax(prob) == argmax(labels))."),
                    lambda: float(np.sum(hits))),
            Mistake("accuracy_argmax_wrong_axis", lazy("Diagnosis: your computeAccuracy takes "
                    "argmax over the batch (axis 0) instead of over the classes (axis 1): the "
                    "prediction of image n is prediction_n = argmax_c prob[n, c]."),
                    lambda: float(np.mean(np.argmax(scores, axis=0)
                                          == np.argmax(labels, axis=0))))]


def he_init_std(name: str, fan_in: int, fan_out: int) -> list[Mistake]:
    """Mistakes of He initialisation, predicted as the standard deviation they give.

    The check compares a statistic, not values: each prediction is the std a weight of
    shape (fan_in, fan_out) drawn that way has.

    Args:
        name: "W1" or "W2", for the sentence.
        fan_in: the rows of the weight (785 for W1: 784 pixels and the bias row).
        fan_out: its columns (latent_dims for W1, 10 for W2).
    """
    facts = {"name": name, "fan_in": fan_in, "fan_out": fan_out,
             "std": f"{np.sqrt(2 / fan_in):.4g}"}
    return [
        Mistake("he_init_fan_out", _(
            "Diagnosis: your {name} is scaled by its number of outputs, np.sqrt({fan_out} / 2), "
            "instead of its inputs: the lecture's He initialisation is np.random.normal(0, 1, "
            "size=[{fan_in}, {fan_out}]) / np.sqrt({fan_in} / 2), standard deviation "
            "sqrt(2 / fan_in) = {std}, where fan_in = {fan_in} is the number of rows (inputs) "
            "of {name}.", **facts), lambda: np.sqrt(2.0 / fan_out)),
        Mistake("he_init_unscaled", _(
            "Diagnosis: your {name} is drawn from normal(0, 1) and never scaled: the lecture's "
            "He initialisation is np.random.normal(0, 1, size=[{fan_in}, {fan_out}]) / "
            "np.sqrt({fan_in} / 2), standard deviation sqrt(2 / fan_in) = {std}, where "
            "fan_in = {fan_in} is the number of rows (inputs) of {name}.", **facts),
            lambda: 1.0),
        Mistake("he_init_without_factor_two", _(
            "Diagnosis: your {name} is divided by np.sqrt({fan_in}) (Xavier/LeCun), without "
            "He's factor 2 for ReLU: the lecture's He initialisation is np.random.normal(0, 1, "
            "size=[{fan_in}, {fan_out}]) / np.sqrt({fan_in} / 2), standard deviation "
            "sqrt(2 / fan_in) = {std}, where fan_in = {fan_in} is the number of rows (inputs) "
            "of {name}.", **facts), lambda: np.sqrt(1.0 / fan_in))]


def train_step(w: np.ndarray, grad: np.ndarray, learning_rate: float,
               received: Any = None) -> list[Mistake]:
    """Mistakes of a step's update of one weight matrix.

    Args:
        w: the weights before the step; grad: their gradient (same shape).
        learning_rate: the rate the step was given.
        received: the weights the student's step left, to estimate the rate it used.
    """
    mistakes = [
        Mistake("step_gradient_ascent", lazy("Diagnosis: your train_one_step moves the weights "
                "up the gradient; SGD goes down it: W <- W - learning_rate * dL/dW."),
                lambda: w + learning_rate * grad),
        Mistake("step_skips_weight", lazy("Diagnosis: your train_one_step leaves this weight "
                "matrix unchanged; every weight is updated, W1 and W2: "
                "W <- W - learning_rate * dL/dW."), lambda: w)]
    try:
        moved = w - np.asarray(received, dtype=np.float64)
        used = float(np.sum(moved * grad) / np.sum(grad * grad))  # least-squares rate
    except (TypeError, ValueError, ZeroDivisionError, FloatingPointError):
        return mistakes
    if np.isfinite(used) and not np.isclose(used, learning_rate):
        mistakes.append(Mistake(
            "step_ignores_learning_rate", _(
                "Diagnosis: your train_one_step steps with a learning rate of {used}, not the "
                "{given} it is given: W <- W - learning_rate * dL/dW with the argument, not a "
                "constant.", used=f"{used:.4g}", given=f"{learning_rate:g}"),
            lambda: w - used * grad))
    return mistakes


NO_BIAS_COLUMN = Mistake(
    "no_bias_column", lazy(
        "Diagnosis: your W1 has no row for the bias: the lecture appends a column "
    "of ones to X, X = [X, 1] of shape (N, 785), so W1 is (785, latent_dims) and its last row "
    "acts as the bias."), lambda: None)


def worst_entries(received: Any, expected: Any, count: int = WORST_SHOWN) -> str:
    """The largest differences as text: "[i, j]: received r, expected e" (worst first).

    Returns "" when the two cannot be compared entry by entry (shapes differ).
    """
    received, expected = np.asarray(received, dtype=float), np.asarray(expected, dtype=float)
    if received.shape != expected.shape or received.size == 0:
        return ""
    difference = np.abs(np.nan_to_num(received - expected, nan=np.inf))
    order = np.argsort(difference, axis=None)[::-1][:count]
    shown = [np.unravel_index(i, received.shape) for i in order]
    return join_clauses(_("[{index}]: received {received}, expected {expected}",
                          index=", ".join(str(int(k)) for k in idx),
                          received=f"{received[idx]:.6g}", expected=f"{expected[idx]:.6g}")
                        for idx in shown)


def difference_figure(check: str, received: Any, expected: Any) -> dict | None:
    """A small matrix of received - expected for the report's heat map (plain, finite data).

    Returns None when the shapes differ. Entries beyond FIGURE_SIDE rows or columns are
    left out (the figure says so); non-finite differences become None.
    """
    received, expected = np.asarray(received, dtype=float), np.asarray(expected, dtype=float)
    if received.shape != expected.shape or received.ndim > 2:
        return None
    matrix = np.atleast_2d(received - expected)
    shown = matrix[:FIGURE_SIDE, :FIGURE_SIDE]
    return {"check": check, "shape": list(matrix.shape),
            "rows": [[float(v) if np.isfinite(v) else None for v in row] for row in shown],
            "truncated": shown.shape != matrix.shape}


EQUAL_INITIAL_WEIGHTS = Mistake(
    "equal_initial_weights", lazy("Diagnosis: your initial weights are all equal, so every hidden "
    "unit computes the same thing and gets the same gradient: the lecture draws them at "
    "random, W = normal(0, 1) / sqrt(fan_in / 2) (He initialisation)."), lambda: None)

STEP_KEEPS_STATE = Mistake(
    "step_keeps_state", lazy("Diagnosis: your train_one_step is right on the first call and wrong "
    "on a later one: it keeps something between calls (a step counter, a decaying learning "
    "rate, a momentum). Every step is W <- W - learning_rate * dL/dW with the rate given."),
    lambda: None)

SEARCH_NOT_BY_VALIDATION = Mistake(
    "search_not_by_validation", lazy("Diagnosis: your train kept one of the sizes tried, but not "
    "the one with the best validation accuracy (the first, the last, or the one best on the "
    "training data): the lecture's model selection keeps best = argmax over the sizes of the "
    "validation accuracy, and returns that model."), lambda: None)
