"""Hidden checks for `keras_cnn`: preprocessing values, architecture, compile settings, accuracy.

Each aspect of the model is its own test, so one wrong setting costs only its own
points: a 'valid' padding loses the padding test (the public parameter count shows it
with no points of its own), not the filters or the activations; a missing Dropout loses
only the Dropout test. A difference that matches a known mistake of the chapter is named
as data (`grader.checks.keras_diagnoses`: padding, kernel, strides, filters, Flatten,
Dropout, activation, optimizer, loss, from_logits, no /255, labels not one-hot).
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
    compare_logits,
    compare_loss,
    compare_metrics,
    compare_optimizer,
    compare_units,
)
from grader.checks.arrays import assert_close
from grader.checks.keras_diagnoses import (
    compile_mistake,
    diagnosing,
    layer_mistake,
    preprocess_mistake,
    require,
)
from grader.checks.keras_hints import keras_hints
from grader.evaluator.artifact import describe_model
from grader.grading.fixtures import course_messages

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
MODULE = "keras_cnn"
LOSS = ("categorical_crossentropy",)  # CategoricalCrossentropy() is the same loss
METRICS = ("accuracy",)  # "acc" and CategoricalAccuracy() count too

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog

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
    with keras_hints(student):
        model = student.keras_cnn.build_cnn()
        return describe_model(student, model, what="`build_cnn()`")


def _layers_check(student, compare, specs, names: tuple[str, ...], what: str, *,
                  dropout: bool = False) -> None:
    """One layer aspect; a difference names its known mistake when it has one."""
    info = _info(student)
    found = info["layers"] if dropout else [layer for layer in info["layers"]
                                            if layer["class"] != "Dropout"]
    require(compare(found, specs), f"`build_cnn()`: {what}",
            lambda: layer_mistake(found, specs, names, model="CNN",
                                  input_shape=info.get("input_shape")))


def _compile_check(student, problems, what: str, **expected) -> None:
    info = _info(student)
    require(problems(info), f"`build_cnn()`: {what}",
            lambda: compile_mistake(info, model="CNN", **expected))


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair (x, y)", what=what,
                               type=type(received).__name__))
    return received


def _preprocessed(student, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=7).astype(np.uint8)
    what = _("`preprocess(images, labels)` with 7 random images")
    x, y = _pair(student.keras_cnn.preprocess(images, labels), what)
    expected = ((images.astype(np.float32) / 255.0)[..., None],
                np.eye(NUM_CLASSES, dtype=np.float32)[labels])
    return what, (x, y), expected, (images, labels)


# -- preprocessing -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_scales_images(student, seed):
    what, (x, _y), (expected, _expected_y), (images, labels) = _preprocessed(student, seed)
    with diagnosing(lambda: preprocess_mistake(x, images, labels, part="images",
                                                expected_shape=expected.shape)):
        assert_close(x, expected,
                     _("{what}: x (pixels / 255 with a channel axis, values in [0, 1])",
                       what=what),
                     rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_one_hot_labels(student, seed):
    what, (_x, y), (_expected_x, expected), (images, labels) = _preprocessed(student, seed)
    with diagnosing(lambda: preprocess_mistake(y, images, labels, part="labels")):
        assert_close(y, expected, _("{what}: y (one-hot rows, a 1 at each label)", what=what))


# -- architecture ---------------------------------------------------------------------------

def test_layer_kinds(student):
    _layers_check(student, compare_kinds, _only(), ("kinds",), _("layer kinds and order"))


def test_filters_and_units(student):
    _layers_check(student, compare_units, _only("filters", "units"), ("filters", "units"),
                  _("filters and units"))


def test_kernel_and_pool_sizes(student):
    _layers_check(student, compare_geometry, _only("kernel_size", "strides", "pool_size"),
                  ("kernel_size", "strides", "pool_size"),
                  _("kernel sizes, pool sizes and strides"))


def test_padding(student):
    _layers_check(student, compare_geometry, _only("padding"), ("padding",), _("padding"))


def test_activations(student):
    _layers_check(student, compare_activations, _only("activation"), ("activation",),
                  _("activations"))


def test_dropout(student):
    _layers_check(student, compare_dropout, LAYERS, ("rate",),
                  _("Dropout (its place and rate)"),
                  dropout=True)


# -- compile settings ---------------------------------------------------------------------------

def test_optimizer(student):
    _compile_check(student, lambda info: compare_optimizer(info, "Adam"), _("optimizer"),
                   optimizer="Adam")


def test_loss(student):
    # A from_logits loss on the softmax output is the loss on the wrong numbers.
    _compile_check(student, lambda info: compare_loss(info, LOSS) + compare_logits(info),
                   _("loss"),
                   loss=LOSS)


def test_metrics(student):
    _compile_check(student, lambda info: compare_metrics(info, METRICS), _("metrics"),
                   metrics=METRICS)


# -- accuracy under the budget ----------------------------------------------------------------

def test_accuracy(student, assignment, dataset, device, private_split, credit, figure):
    try:
        threshold = threshold_for(assignment, "test_accuracy", dataset.name, device)
    except NoCalibration as exc:
        pytest.skip(_("no accuracy threshold for {dataset} on the {device}: {error}",
                      dataset=dataset.name, device=device, error=exc))
    budget = AccuracyBudget.from_config(assignment, "test_accuracy", device)
    split = private_split(budget.test_images, "test_accuracy")
    with keras_hints(student):
        run = measure_accuracy(student, module=MODULE, build="build_cnn", split=split,
                               dataset=dataset, budget=budget)
    what = _("`build_cnn()` trained {budget}", budget=budget.describe())
    figure("learning_curve", {key: list(values) for key, values in run.history.items()})
    figure("confusion_matrix", {"matrix": np.asarray(run.confusion).tolist(),
                                "labels": list(range(NUM_CLASSES))})
    stopped = f" ({run.budget_message})" if run.stopped_by_budget else ""
    if stopped:
        credit.note(run.budget_message)
    score_accuracy(run.accuracy, threshold=threshold.value, floor=threshold.floor, what=what,
                   credit=credit, figure=figure, images=int(np.asarray(run.confusion).sum()),
                   stopped=run.budget_message if run.stopped_by_budget else "")
