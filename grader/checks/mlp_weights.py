"""The lecture's numpy MLP evaluated from its trained weights, in the grader's process.

A student's `train` runs in the runtime; what comes back is the trained model's weights
as plain arrays (``W1``, ``W2``). Accuracy is never computed from predictions made by
student code: `predict` runs the lecture's forward pass (bias column, ReLU, argmax of
the output layer) here, on images the student's process never sees.

Example:
    >>> weights = trained_weights(w1, w2, hidden=100, what="the model `train` returned")
    >>> classes = predict(weights, images)  # (N,) int64
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.arrays import as_array
from grader.i18n import Domain

_, _n = Domain("checks").functions()

PIXELS = 28 * 28  # images are flattened into 784 pixels
NUM_CLASSES = 10
PIXEL_SCALE = 255.0  # the lecture's preprocessing: pixels / 255
BATCH = 1000  # images per matrix product: bounds the grader's memory for any test split


@dataclass(frozen=True)
class TrainedWeights:
    """A trained FullConnectionModel as plain float64 arrays.

    Attributes:
        w1: (785, H) with the bias as its last row, or (784, H) for a model without one.
        w2: (H, 10).
    """

    w1: np.ndarray
    w2: np.ndarray

    @property
    def has_bias(self) -> bool:
        return self.w1.shape[0] == PIXELS + 1


def trained_weights(w1: Any, w2: Any, *, hidden: int, what: str) -> TrainedWeights:
    """Checks a trained model's weights and returns them as float64 arrays.

    Args:
        w1: the model's ``W1`` as it came back from the runtime.
        w2: the model's ``W2``.
        hidden: the hidden size the model was asked for (``latent_dims``).
        what: the model, for messages, e.g. "the model `train` returned".

    Returns:
        The weights, float64.

    Raises:
        AssertionError: a weight is not a numeric array, has another shape than the
            lecture's network of ``hidden`` units (W1 (785, hidden) or, without the bias
            row, (784, hidden); W2 (hidden, 10)), or holds NaN or infinity.
    """
    first = as_array(w1, f"{what}: `W1`")
    second = as_array(w2, f"{what}: `W2`")
    rows = (PIXELS + 1, PIXELS)
    if first.ndim != 2 or first.shape[0] not in rows or first.shape[1] != hidden:
        raise AssertionError(_(
            "{what}: `W1` has shape {shape}; expected ({rows}, {hidden}) (784 pixels and the "
            "bias row, {hidden} hidden units)", what=what, shape=first.shape, rows=PIXELS + 1,
            hidden=hidden))
    if second.shape != (hidden, NUM_CLASSES):
        raise AssertionError(_("{what}: `W2` has shape {shape}; expected ({hidden}, {classes})",
                               what=what, shape=second.shape, hidden=hidden,
                               classes=NUM_CLASSES))
    for name, weight in (("W1", first), ("W2", second)):
        finite = np.isfinite(weight)
        if not finite.all():
            raise AssertionError(_n(
                "{what}: `{name}` holds {n} NaN or infinite value; expected finite weights "
                "(did training diverge?)", "{what}: `{name}` holds {n} NaN or infinite values; "
                "expected finite weights (did training diverge?)", int((~finite).sum()),
                what=what, name=name))
    return TrainedWeights(first.astype(np.float64), second.astype(np.float64))


def predict(weights: TrainedWeights, images: np.ndarray) -> np.ndarray:
    """The network's classes for some images, by the lecture's forward pass.

    Args:
        weights: from `trained_weights`.
        images: uint8 (N, 28, 28), pixel values 0..255.

    Returns:
        int64 (N,): argmax of ``relu([x, 1] @ W1) @ W2`` per image (softmax keeps the argmax).
    """
    x_all = np.asarray(images).reshape(len(images), PIXELS)
    classes = np.empty(len(x_all), dtype=np.int64)
    for start in range(0, len(x_all), BATCH):
        x = x_all[start:start + BATCH].astype(np.float64) / PIXEL_SCALE
        if weights.has_bias:
            x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        hidden = np.maximum(x @ weights.w1, 0.0)
        classes[start:start + BATCH] = np.argmax(hidden @ weights.w2, axis=1)
    return classes


def lecture_inputs(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lecture's preprocessing, done grader-side for the training run.

    Args:
        images: uint8 (N, 28, 28); labels: int (N,), 0..9.

    Returns:
        (x, y): float32 (N, 784) pixels / 255, float32 (N, 10) one-hot labels.
    """
    x = np.asarray(images).reshape(len(images), PIXELS).astype(np.float32) / np.float32(
        PIXEL_SCALE)
    return x, np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels)]


def budget_data(dataset: Any, budgets: Any) -> tuple[np.ndarray, ...]:
    """The training and validation data of the accuracy test under ``[budgets]``.

    Args:
        dataset: a `grader.data.Dataset`.
        budgets: the assignment's budgets (``train_images``, ``validation_images``).

    Returns:
        (x, y, x_validation, y_validation), as `lecture_inputs` makes them.
    """
    n, nv = int(budgets["train_images"]), int(budgets["validation_images"])
    return (*lecture_inputs(dataset.x_train[:n], dataset.y_train[:n]),
            *lecture_inputs(dataset.x_validation[:nv], dataset.y_validation[:nv]))


def train_under_budget(module: Any, data: tuple[np.ndarray, ...], budgets: Any, *,
                       latent: int, seed: int) -> TrainedWeights:
    """The accuracy test's training run: ``module.train`` under ``[budgets]``, its weights.

    The one protocol of the hidden test and of `grader calibrate mlp_numpy`: ``module`` is
    the submission's `mlp_numpy` (through the proxy), or the reference's when calibrating.

    Args:
        module: a module with the lecture's ``train``.
        data: (x, y, x_validation, y_validation) from `budget_data`.
        budgets: ``train_epochs``, ``batch_size``, ``learning_rate``.
        latent: the hidden size trained (``[parameters] latent_dims[0]``).
        seed: the training seed.

    Returns:
        The trained model's weights (`trained_weights`; AssertionError when unusable).
    """
    model = module.train(*data, latent_dims=(latent,), epochs=int(budgets["train_epochs"]),
                         batch_size=int(budgets["batch_size"]),
                         learning_rate=budgets["learning_rate"], seed=seed, verbose=False)
    return trained_weights(model.W1, model.W2, hidden=latent,
                           what=_("the model `train(..., latent_dims=({latent},))` returned",
                                  latent=latent))
