"""Train the student's declared model in the evaluator; compute accuracy here.

The student's ``build_*()`` runs in the student runtime and hands over its model as an
artifact: its Keras config and compile config (`grader.evaluator.artifact.read_model`),
validated against an allow-list in this process. The evaluator, a clean sandboxed
process that holds no student code (`grader.evaluator.runtime`), rebuilds that model,
initialises it from the grader's seed, trains it under the budget on the first training
images and predicts a private split of the test images (`grader.checks.splits`: a
subset in an order the runtime never sees). Images are prepared as the assignment
specifies (pixels / 255, reshaped to the model's input; one-hot labels), not by the
student's ``preprocess``, which its own tests check. Test images never enter the
student's process; test labels stay here, where the accuracy and the confusion matrix
are computed::

    budget = AccuracyBudget.from_config(assignment, "test_accuracy", device)
    split = private_split(budget.test_images, "test_accuracy")
    run = measure_accuracy(student, module="keras_cnn", build="build_cnn", split=split,
                           dataset=dataset, budget=budget)
    threshold = threshold_for(assignment, "test_accuracy", dataset.name, device)

Training starts from the grader's own initialisation, never from the student's weights,
so weights fitted to the test set beforehand gain nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.checks.splits import PrivateSplit
from grader.config import AssignmentConfig
from grader.evaluator.artifact import read_model
from grader.evaluator.runtime import evaluator_for
from grader.evaluator.spec import ModelRefused, ModelSpec, shapes
from grader.i18n import Domain
from grader.runtime.errors import StudentFailure

_, _n = Domain("checks").functions()

__all__ = ["NUM_CLASSES", "AccuracyBudget", "AccuracyRun", "accuracy_credit",
           "call_timeout_for", "measure_accuracy", "prepare_images", "score_accuracy"]

NUM_CLASSES = 10
CALL_MARGIN_S = 120.0
"""Wall-clock allowance beyond the training budget for one evaluator call: starting it,
the batch that crosses the budget, prediction on the test images, the transfers."""
IMAGE_SIZE = 28 * 28


@dataclass(frozen=True)
class AccuracyBudget:
    """What one accuracy measurement may use.

    Attributes:
        train_images: The first N training images are used.
        test_images: M test images of a private split are predicted.
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
        return _n("{n} epoch on {images} images in batches of {batch_size}, at most "
                  "{seconds} s", "{n} epochs on {images} images in batches of {batch_size}, "
                  "at most {seconds} s", self.epochs, images=f"{self.train_images:,}",
                  batch_size=self.batch_size, seconds=f"{self.time_budget_s:g}")


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
        facts = {"seconds": f"{self.budget.time_budget_s:g}", "done": self.epochs_done,
                 "epochs": self.budget.epochs, "partial": partial}
        if partial > 0:
            return _("training stopped at its time budget of {seconds} s after {done} of "
                     "{epochs} epochs (and {partial} batches of the next); the accuracy is that "
                     "of the model at that point", **facts)
        return _("training stopped at its time budget of {seconds} s after {done} of {epochs} "
                 "epochs; the accuracy is that of the model at that point", **facts)


def call_timeout_for(budget: AccuracyBudget) -> float:
    """The wall-clock limit of the runtime call that trains under ``budget``."""
    return 2 * budget.time_budget_s + CALL_MARGIN_S


def _function(student: Any, module: str, name: str) -> Any:
    return getattr(getattr(student, module), name)


def prepare_images(images: np.ndarray, input_shape: tuple[int, ...], what: str) -> np.ndarray:
    """Images as the assignment specifies them: float32 pixels / 255 in the model's shape.

    Args:
        images: uint8 (N, 28, 28).
        input_shape: The model's input, e.g. (784,) or (28, 28, 1).
        what: How a message names the model.

    Returns:
        float32 (N, *input_shape), values in [0, 1].

    Raises:
        ModelRefused: If the model's input does not hold a 28x28 image.
    """
    if int(np.prod(input_shape)) != IMAGE_SIZE:
        raise ModelRefused(_("{what} takes inputs of shape {shape}; expected one 28x28 image "
                             "({size} values) per example, e.g. (784,) or (28, 28, 1)",
                             what=what, shape=tuple(input_shape), size=IMAGE_SIZE))
    return (np.asarray(images, dtype=np.float32) / 255.0).reshape(-1, *input_shape)


def _check_trainable(spec: ModelSpec, what: str) -> None:
    """A compiled model with one probability (or score) per class."""
    if spec.compile is None:
        raise ModelRefused(_("{what} returned a model that is not compiled; expected "
                             "`model.compile(optimizer=..., loss=..., metrics=[...])`",
                             what=what))
    output = shapes(spec)[-1][0]
    if output != (NUM_CLASSES,):
        raise ModelRefused(_("{what}'s output has shape {output} per example; expected "
                             "({classes},), one value per class", what=what, output=output,
                             classes=NUM_CLASSES))


def measure_accuracy(student: Any, *, module: str, build: str, split: PrivateSplit,
                     dataset: Any, budget: AccuracyBudget, seed: int | None = None,
                     input_shape: tuple[int, ...] | None = None) -> AccuracyRun:
    """Read the student's model, train and predict it in the evaluator, score it here.

    Args:
        student: The ``student`` proxy.
        module: The student module, e.g. "keras_cnn".
        build: Its function building the compiled model, e.g. "build_cnn".
        split: The private test split to predict (``private_split`` fixture); its
            labels never leave this process.
        dataset: A `grader.data.Dataset` (its training images and labels are used).
        budget: The budget.
        seed: Overrides ``budget.seed`` (calibration runs several seeds).
        input_shape: One example's shape, for a model whose config does not say it.

    Returns:
        The run; ``accuracy`` is computed here from the evaluator's predictions.

    Raises:
        StudentFailure: When the student's build function raises, times out or crashes
            (wrap the call in `grader.checks.keras_hints.keras_hints` for Keras 3 hints).
        ModelRefused: (an AssertionError) When the model cannot be rebuilt or trained.
        AssertionError: When the predictions have the wrong shape.
    """
    seed = budget.seed if seed is None else int(seed)
    n_train, n_test = budget.train_images, len(split.labels)
    what = f"`{module}.{build}()`"
    with student.time_limit(call_timeout_for(budget)):
        student.seed(seed)
        model = _function(student, module, build)()
        spec = read_model(student, model, what=what, input_shape=input_shape)
    _check_trainable(spec, what)
    x_train = prepare_images(dataset.x_train[:n_train], spec.input_shape, what)
    y_train = np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(dataset.y_train[:n_train])]
    x_test = prepare_images(split.images, spec.input_shape, what)
    evaluator = evaluator_for(student)
    try:
        with evaluator.time_limit(call_timeout_for(budget)):
            result = evaluator.evaluator.fit_and_predict(
                spec.as_plain(), x_train, y_train, x_test, epochs=budget.epochs,
                batch_size=budget.batch_size, seed=seed, time_budget_s=budget.time_budget_s)
    except StudentFailure as exc:
        raise AssertionError(_("training the model {what} declares failed in the grader's "
                               "evaluator: {error}", what=what, error=exc)) from None
    test_labels = np.asarray(split.labels).astype(np.int64)  # stays here
    predictions = np.asarray(result["predictions"])
    if predictions.shape != (n_test, NUM_CLASSES):
        raise AssertionError(_("the trained model's predictions for {n} test images have "
                               "shape {shape}; expected ({n}, {classes})", n=n_test,
                               shape=predictions.shape, classes=NUM_CLASSES))
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


def accuracy_credit(accuracy: float, threshold: float, floor: float) -> float:
    """The fraction of an accuracy test's points: 1 at or above `threshold`, 0 at or below
    `floor` (or for a non-finite accuracy), linear in between (`Threshold.credit`'s rule)."""
    if not math.isfinite(accuracy):
        return 0.0
    if accuracy >= threshold:
        return 1.0
    if accuracy <= floor or threshold <= floor:
        return 0.0
    return (accuracy - floor) / (threshold - floor)


def score_accuracy(accuracy: float, *, threshold: float, floor: float, what: str,
                   credit: Any, figure: Any = None, images: int | None = None,
                   stopped: str = "", dataset: str | None = None) -> float:
    """Scores an accuracy test: THE rule every suite uses (threshold, floor, linear credit).

    Full points at or above `threshold`; linear partial credit down to `floor`; nothing at
    or below it (an AssertionError: a wrong result). The message says what was trained and
    on what budget (`what`), the accuracy reached, the threshold and the floor.

    Args:
        accuracy: The accuracy measured grader-side, in [0, 1].
        threshold: Full points from here (calibrated).
        floor: No points at or below this.
        what: The model and its budget in words, e.g. "`build_cnn()` trained for 1 epoch on
            6,000 images".
        credit: The test's `credit` fixture.
        figure: The test's `figure` fixture; records the "accuracy" figure when given.
        images: How many test images the accuracy was measured on (named in the message).
        stopped: Why training stopped early (the time budget), or "".
        dataset: The dataset's name, for the figure.

    Returns:
        The fraction of the points earned.

    Raises:
        AssertionError: When the accuracy is at or below the floor.
    """
    accuracy = float(accuracy)
    if figure is not None:  # the report's accuracy line: reached, on what, against what
        figure("accuracy", {"accuracy": accuracy, "threshold": threshold, "floor": floor,
                            "trained": what, **({"dataset": dataset} if dataset else {}),
                            **({"images": int(images)} if images else {})})
    if images:
        reached = _("{what} reached test accuracy {accuracy} on {images} test images",
                    what=what, accuracy=f"{accuracy:.4f}", images=f"{images:,}")
    else:
        reached = _("{what} reached test accuracy {accuracy}", what=what,
                    accuracy=f"{accuracy:.4f}")
    if stopped:  # why training stopped early, a sentence of its own in parentheses
        reached = _("{reached} ({stopped})", reached=reached, stopped=stopped)
    fraction = accuracy_credit(accuracy, threshold, floor)
    assert fraction > 0.0, _("{reached}; expected at least {threshold} for full points "
                             "(partial credit above {floor}, linear)", reached=reached,
                             threshold=f"{threshold:.4f}", floor=f"{floor:.4f}")
    if fraction < 1.0:
        credit.set(fraction, _("{reached}, below {threshold}: partial credit {percent} "
                               "(linear from none at {floor} to full at {threshold})",
                               reached=reached, threshold=f"{threshold:.4f}",
                               percent=f"{fraction:.0%}", floor=f"{floor:.4f}"))
    return fraction
