"""Train the student's model under a budget inside the runtime; compute accuracy here.

Only images (and the training labels, which training needs) cross into the student
runtime; the test labels stay in the grader's process. The student's own
``preprocess(images, labels)`` prepares the data (for the test images it gets zero
labels, and the labels it returns are ignored), the student's ``build_*()`` builds and
compiles the model, `grader.runtime.keras_tools.fit_and_predict` trains it there under
the budget and returns predictions, and the accuracy and confusion matrix are
computed here::

    budget = AccuracyBudget.from_config(assignment, "test_accuracy", device)
    run = measure_accuracy(student, module="keras_cnn", build="build_cnn",
                           preprocess="preprocess", dataset=dataset, budget=budget)
    threshold = threshold_for(assignment, "test_accuracy", dataset.name, device)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.config import AssignmentConfig

__all__ = ["NUM_CLASSES", "AccuracyBudget", "AccuracyRun", "call_timeout_for",
           "measure_accuracy"]

NUM_CLASSES = 10
CALL_MARGIN_S = 120.0
"""Wall-clock allowance beyond the training budget for one `fit_and_predict` call: the
batch that crosses the budget, prediction on the test images, the transfers."""


@dataclass(frozen=True)
class AccuracyBudget:
    """What one accuracy measurement may use.

    Attributes:
        train_images: The first N training images are used.
        test_images: The first M test images are predicted.
        epochs: Epochs at most.
        batch_size: Examples per batch.
        time_budget_s: Training stops at the first batch end past this.
        seed: Seeds Python, numpy and TensorFlow before the model is built and trained.
    """

    train_images: int
    test_images: int
    epochs: int
    batch_size: int
    time_budget_s: float
    seed: int = 0

    @classmethod
    def from_config(cls, config: AssignmentConfig, test_name: str,
                    device: str) -> AccuracyBudget:
        """The budget of an ``[[accuracy]]`` entry on a device.

        Raises:
            KeyError: If the assignment has no ``[[accuracy]]`` entry for ``test_name``.
        """
        values = config.accuracy_test(test_name).budget_for(device)
        return cls(train_images=int(values["train_images"]),
                   test_images=int(values["test_images"]), epochs=int(values["epochs"]),
                   batch_size=int(values["batch_size"]),
                   time_budget_s=float(values["time_budget_s"]), seed=int(values["seed"]))

    def as_dict(self) -> dict[str, int | float]:
        """The budget as plain data (calibration files record it)."""
        return {"train_images": self.train_images, "test_images": self.test_images,
                "epochs": self.epochs, "batch_size": self.batch_size,
                "time_budget_s": self.time_budget_s, "seed": self.seed}

    def describe(self) -> str:
        """``"2 epochs on 5,000 images in batches of 128, at most 30 s"``."""
        return (f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} on "
                f"{self.train_images:,} images in batches of {self.batch_size}, at most "
                f"{self.time_budget_s:g} s")


@dataclass(frozen=True)
class AccuracyRun:
    """One measured training run.

    Attributes:
        accuracy: Fraction of the test images classified right, in [0, 1].
        epochs_done: Complete epochs trained.
        stopped_by_budget: Whether the time budget cut training short.
        seconds: Wall time of training and prediction in the runtime.
        history: ``{"loss": [...], "accuracy": [...]}`` per epoch (None where absent).
        confusion: int array (10, 10): row = true class, column = predicted class.
        budget: The budget it ran under.
        batches_done: Batches trained, in all epochs.
        fit_seconds: Wall time of training alone.
        predict_seconds: Wall time of prediction alone.
    """

    accuracy: float
    epochs_done: int
    stopped_by_budget: bool
    seconds: float
    history: Mapping[str, Sequence[float | None]]
    confusion: np.ndarray
    budget: AccuracyBudget | None = None
    batches_done: int = 0
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def budget_message(self) -> str:
        """How far training got, and the budget; "" when it was not cut short.

        E.g. "training stopped at its time budget of 30 s after 1 of 2 epochs (and 17
        batches of the next); the accuracy is that of the model at that point".
        """
        if not self.stopped_by_budget or self.budget is None:
            return ""
        per_epoch = -(-self.budget.train_images // self.budget.batch_size)
        partial = self.batches_done - self.epochs_done * per_epoch
        more = f" (and {partial} batches of the next)" if partial > 0 else ""
        return (f"training stopped at its time budget of {self.budget.time_budget_s:g} s after "
                f"{self.epochs_done} of {self.budget.epochs} epochs{more}; the accuracy is "
                "that of the model at that point")


def call_timeout_for(budget: AccuracyBudget) -> float:
    """The wall-clock limit of the runtime call that trains under ``budget``."""
    return 2 * budget.time_budget_s + CALL_MARGIN_S


def _function(student: Any, module: str, name: str) -> Any:
    return getattr(getattr(student, module), name)


def _check_prepared(summary: Any, n: int, what: str) -> None:
    """The preprocessed inputs have one row per image."""
    x = summary.get("x") if isinstance(summary, dict) else None
    if not x or not x.get("shape") or x["shape"][0] != n:
        shape = None if not x else x.get("shape")
        raise AssertionError(f"{what} returned inputs of shape {shape}; expected {n} rows, "
                             "one per image")


def measure_accuracy(student: Any, *, module: str, build: str, preprocess: str, dataset: Any,
                     budget: AccuracyBudget, seed: int | None = None) -> AccuracyRun:
    """Preprocess, build, train and predict in the runtime; score here.

    Args:
        student: The ``student`` proxy.
        module: The student module, e.g. "keras_cnn".
        build: Its function building the compiled model, e.g. "build_cnn".
        preprocess: Its function ``(images, labels) -> (x, y)``.
        dataset: A `grader.data.Dataset` (``x_train``, ``y_train``, ``x_test``, ``y_test``).
        budget: The budget.
        seed: Overrides ``budget.seed`` (calibration runs several seeds).

    Returns:
        The run; ``accuracy`` is computed here from the returned predictions.

    Raises:
        StudentFailure: When the student's code raises, times out or crashes (wrap the
            call in `grader.checks.keras_hints.keras_hints` for Keras 3 hints).
        AssertionError: When preprocessing or the predictions have the wrong shape.
    """
    seed = budget.seed if seed is None else int(seed)
    n_train, n_test = budget.train_images, budget.test_images
    images = np.asarray(dataset.x_train[:n_train])
    labels = np.asarray(dataset.y_train[:n_train])
    test_images = np.asarray(dataset.x_test[:n_test])
    test_labels = np.asarray(dataset.y_test[:n_test]).astype(np.int64)  # stays here
    what = f"{module}.{preprocess}(images, labels)"
    with student.time_limit(call_timeout_for(budget)):
        student.seed(seed)
        fn = _function(student, module, preprocess)
        train = student.tool("preprocess_kept", fn, images, labels)
        _check_prepared(train, n_train, what)
        test = student.tool("preprocess_kept", fn, test_images,
                            np.zeros(n_test, dtype=labels.dtype))
        _check_prepared(test, n_test, what)
        student.seed(seed)  # the model's initial weights do not depend on preprocessing
        model = _function(student, module, build)()
        result = student.tool("fit_and_predict", model, train["data"], None, test["data"],
                              epochs=budget.epochs, batch_size=budget.batch_size, seed=seed,
                              time_budget_s=budget.time_budget_s)
    predictions = np.asarray(result["predictions"])
    if predictions.shape != (n_test, NUM_CLASSES):
        raise AssertionError(f"the trained model's predictions for {n_test} test images have "
                             f"shape {predictions.shape}; expected ({n_test}, {NUM_CLASSES})")
    predicted = np.argmax(np.nan_to_num(predictions, nan=-np.inf), axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (test_labels, predicted), 1)
    accuracy = float(np.trace(confusion)) / max(n_test, 1)
    return AccuracyRun(
        accuracy=accuracy, epochs_done=int(result["epochs_done"]),
        stopped_by_budget=bool(result["stopped_by_budget"]), seconds=float(result["seconds"]),
        history=dict(result["history"]), confusion=confusion,
        budget=AccuracyBudget(**{**budget.as_dict(), "seed": seed}),
        batches_done=int(result["batches_done"]),
        fit_seconds=float(result.get("fit_seconds", 0.0)),
        predict_seconds=float(result.get("predict_seconds", 0.0)))
