"""What the Keras suites feed a declared model and how they judge its output (numpy only).

The public suites of keras_mlp, keras_cnn and alexnet run the untrained model a student
declares (in the grader's evaluator) and one training step of it; the batch and the
probability check are the same for all three, so they live here.

Decisions:
- numpy only: the student kit imports this with `grader check`, and importing it must not
  need TensorFlow (the evaluator that runs the model is elsewhere).
- The step batch is uniform pixels in [0, 1] with one-hot labels drawn from a seeded
  generator: the same batch on every machine, on which every correct model's loss falls
  (tests/test_checks_keras_diagnoses.py checks the reference and each correct variant).
"""

from __future__ import annotations

import numpy as np

from grader.i18n import Domain

_, _n = Domain("checks").functions()

SUM_TOLERANCE = 1e-4  # float32 probabilities sum to 1 within rounding
NUM_CLASSES = 10  # MNIST's digits (and Fashion-MNIST's classes)


def assert_probability_rows(probs: np.ndarray, what: str, *,
                            tolerance: float = SUM_TOLERANCE) -> None:
    """Each row is a distribution over classes: no negative entry, a sum of 1.

    Args:
        probs: the model's output, shape (batch, classes), already shape-checked.
        what: the call that produced it, as the student reads it in a message.
        tolerance: how far from 1 a row's sum may be.

    Raises:
        AssertionError: naming the smallest entry or the row sums, and asking whether the
            last layer's activation is softmax (the usual cause).
    """
    assert np.all(probs >= 0), _(
        "{what} returned negative values (smallest {smallest}); expected class probabilities: "
        "is the last layer's activation softmax?", what=what, smallest=f"{probs.min():.3g}")
    sums = probs.sum(axis=1)
    assert np.allclose(sums, 1.0, atol=tolerance), _(
        "{what}: each row must sum to 1; row sums are {sums} (is the last layer's activation "
        "softmax?)", what=what, sums=np.round(sums, 4).tolist())


def step_batch(input_shape: tuple[int, ...], *, batch: int, seed: int,
               num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """The one-step check's batch.

    Args:
        input_shape: one example's shape, e.g. (784,) or (28, 28, 1).
        batch: the number of examples.
        seed: the generator's seed.
        num_classes: the label classes.

    Returns:
        (x, y): x float32 of shape (batch, *input_shape) in [0, 1]; y float32 one-hot rows
        of shape (batch, num_classes).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(batch, *input_shape)).astype(np.float32)
    y = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, size=batch)]
    return x, y
