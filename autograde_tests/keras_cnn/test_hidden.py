"""Hidden checks for `keras_cnn`: preprocessing values, architecture, compile settings, accuracy.

Each aspect of the model is its own test, so one wrong setting costs only its own
points: a 'valid' padding loses the padding test (and the public parameter count),
not the filters or the activations; a missing Dropout loses only the Dropout test.
The student's `build_cnn()` runs in the student runtime and hands over its model's
config (plain data); the architecture is checked here from that config, and the model
it declares is trained and run in the grader's evaluator, a clean sandboxed process
(`grader.evaluator`), on a private split of the test images whose labels stay here.
Expected values are computed with numpy, so this process never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grader.calibration import NoCalibration, threshold_for
from grader.checks.accuracy import AccuracyBudget, measure_accuracy, score_accuracy
from grader.checks.architecture import (
    LayerSpec,
    compare_activations,
    compare_dropout,
    compare_geometry,
    compare_kinds,
    compare_loss,
    compare_metrics,
    compare_optimizer,
    compare_units,
)
from grader.checks.arrays import assert_close
from grader.checks.keras_hints import keras_hints
from grader.evaluator.artifact import describe_model

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
MODULE = "keras_cnn"
LOSS = ("categorical_crossentropy",)  # CategoricalCrossentropy() is the same loss
METRICS = ("accuracy",)  # "acc" and CategoricalAccuracy() count too

LAYERS = (
    LayerSpec("Conv2D", filters=8, kernel_size=(5, 5), strides=(1, 1), padding="same",
              activation="relu"),
    LayerSpec("MaxPooling2D", pool_size=(2, 2), strides=(2, 2)),
    LayerSpec("Conv2D", filters=16, kernel_size=(5, 5), strides=(1, 1), padding="same",
              activation="relu"),
    LayerSpec("MaxPooling2D", pool_size=(2, 2), strides=(2, 2)),
    LayerSpec("Flatten"),
    LayerSpec("Dense", units=100, activation="relu"),
    LayerSpec("Dropout", rate=0.25),
    LayerSpec("Dense", units=NUM_CLASSES, activation="softmax"),
)


def _only(*settings: str, specs=LAYERS) -> list[LayerSpec]:
    """The spec with only the named settings checked, Dropout left to its own test."""
    unchecked = {f.name: None for f in dataclasses.fields(LayerSpec)
                 if f.name != "kind" and f.name not in settings}
    return [dataclasses.replace(spec, **unchecked) for spec in specs if spec.kind != "Dropout"]


def _info(student) -> dict:
    """The description of the student's freshly built CNN, read from its config here."""
    with keras_hints():
        model = student.keras_cnn.build_cnn()
        return describe_model(student, model, what="`build_cnn()`")


def _layers(student, *, dropout: bool = False) -> list[dict]:
    """The model's layers; without Dropout unless asked (Dropout has its own test)."""
    layers = _info(student)["layers"]
    return layers if dropout else [layer for layer in layers if layer["class"] != "Dropout"]


def _require(problems: list[str], what: str) -> None:
    assert not problems, f"{what}:\n" + "\n".join(problems)


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(f"{what} returned {type(received).__name__}; expected a pair (x, y)")
    return received


def _preprocessed(student, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=7).astype(np.uint8)
    what = "`preprocess(images, labels)` with 7 random images"
    x, y = _pair(student.keras_cnn.preprocess(images, labels), what)
    expected = ((images.astype(np.float32) / 255.0)[..., None],
                np.eye(NUM_CLASSES, dtype=np.float32)[labels])
    return what, (x, y), expected


# -- preprocessing -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_scales_images(student, seed):
    what, (x, _), (expected, _) = _preprocessed(student, seed)
    assert_close(x, expected, f"{what}: x (pixels / 255 with a channel axis, values in [0, 1])",
                 rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_one_hot_labels(student, seed):
    what, (_, y), (_, expected) = _preprocessed(student, seed)
    assert_close(y, expected, f"{what}: y (one-hot rows, a 1 at each label)")


# -- architecture ---------------------------------------------------------------------------

def test_layer_kinds(student):
    _require(compare_kinds(_layers(student), _only()), "`build_cnn()`: layer kinds and order")


def test_filters_and_units(student):
    _require(compare_units(_layers(student), _only("filters", "units")),
             "`build_cnn()`: filters and units")


def test_kernel_and_pool_sizes(student):
    _require(compare_geometry(_layers(student), _only("kernel_size", "strides", "pool_size")),
             "`build_cnn()`: kernel sizes, pool sizes and strides")


def test_padding(student):
    _require(compare_geometry(_layers(student), _only("padding")), "`build_cnn()`: padding")


def test_activations(student):
    _require(compare_activations(_layers(student), _only("activation")),
             "`build_cnn()`: activations")


def test_dropout(student):
    _require(compare_dropout(_layers(student, dropout=True), LAYERS),
             "`build_cnn()`: Dropout (its place and rate)")


# -- compile settings ---------------------------------------------------------------------------

def test_optimizer(student):
    _require(compare_optimizer(_info(student), "Adam"), "`build_cnn()`: optimizer")


def test_loss(student):
    _require(compare_loss(_info(student), LOSS), "`build_cnn()`: loss")


def test_metrics(student):
    _require(compare_metrics(_info(student), METRICS), "`build_cnn()`: metrics")


# -- accuracy under the budget ----------------------------------------------------------------

def test_accuracy(student, assignment, dataset, device, private_split, credit, figure):
    try:
        threshold = threshold_for(assignment, "test_accuracy", dataset.name, device)
    except NoCalibration as exc:
        pytest.skip(f"no accuracy threshold for {dataset.name} on the {device}: {exc}")
    budget = AccuracyBudget.from_config(assignment, "test_accuracy", device)
    split = private_split(budget.test_images, "test_accuracy")
    with keras_hints():
        run = measure_accuracy(student, module=MODULE, build="build_cnn", split=split,
                               dataset=dataset, budget=budget)
    what = f"`build_cnn()` trained {budget.describe()}"
    figure("learning_curve", {key: list(values) for key, values in run.history.items()})
    figure("confusion_matrix", {"matrix": np.asarray(run.confusion).tolist(),
                                "labels": list(range(NUM_CLASSES))})
    credit.note(f"threshold {threshold.value:.4f} from calibration {threshold.source}")
    stopped = f" ({run.budget_message})" if run.stopped_by_budget else ""
    if stopped:
        credit.note(run.budget_message)
    score_accuracy(run.accuracy, threshold=threshold.value, floor=threshold.floor, what=what,
                   credit=credit, images=int(np.asarray(run.confusion).sum()),
                   stopped=run.budget_message if run.stopped_by_budget else "")
