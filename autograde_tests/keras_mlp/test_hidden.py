"""Hidden checks for `keras_mlp`: preprocessing values, architecture, compile settings, accuracy.

Each aspect of a model is its own test, so one wrong setting costs only its own points.
Models are built in the student runtime and handed over as their configs (plain data);
the architecture is checked here, and the declared model is trained and run in the
grader's evaluator, a clean sandboxed process (`grader.evaluator`), on a private split
of the test images. The accuracy is computed here, against labels that never leave it.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.calibration import NoCalibration, threshold_for
from grader.checks.accuracy import AccuracyBudget, measure_accuracy, score_accuracy
from grader.checks.architecture import (
    LayerSpec,
    compare_activations_only,
    compare_kinds,
    compare_learning_rate,
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
INPUT_DIM = 28 * 28
MODULE = "keras_mlp"
LEARNING_RATE = 0.1
SEQUENTIAL_LOSS = ("mse",)  # "mean_squared_error" and MeanSquaredError() are the same loss
FUNCTIONAL_LOSS = ("categorical_crossentropy",)
METRICS = ("accuracy",)  # "acc" and CategoricalAccuracy() count too

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog

SEQUENTIAL = (
    LayerSpec("Dense", units=512, activation="relu"),
    LayerSpec("Dense", units=NUM_CLASSES, activation="softmax"),
)
FUNCTIONAL = (
    LayerSpec("Dense", units=64, activation="relu"),
    LayerSpec("Dense", units=64, activation="relu"),
    LayerSpec("Dense", units=NUM_CLASSES, activation="softmax"),
)


def _describe(student, build: str) -> dict:
    """The description of the student's freshly built model, read from its config here."""
    with keras_hints(student):
        model = getattr(student.keras_mlp, build)()
        return describe_model(student, model, what=f"`{build}()`")


def _layers_check(student, build: str, expected, names: tuple[str, ...], compare,
                  what: str) -> None:
    """One layer aspect of a model; a difference names its known mistake when it has one."""
    found = _describe(student, build)["layers"]
    model = "Sequential MLP" if build == "build_sequential_mlp" else "functional MLP"
    require(compare(found, expected), f"`{build}()`: {what}",
            lambda: layer_mistake(found, expected, names, model=model))


def _compile_check(student, build: str, problems, what: str, **expected) -> None:
    """One compile aspect; the known mistake (optimizer, rate, loss, metrics) is named."""
    info = _describe(student, build)
    model = "Sequential MLP" if build == "build_sequential_mlp" else "functional MLP"
    require(problems(info), f"`{build}()`: {what}",
            lambda: compile_mistake(info, model=model, **expected))


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
    x, y = _pair(student.keras_mlp.preprocess(images, labels), what)
    expected = (images.reshape(-1, INPUT_DIM).astype(np.float32) / 255.0,
                np.eye(NUM_CLASSES, dtype=np.float32)[labels])
    return what, (x, y), expected, (images, labels)


# -- preprocessing -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_scales_images(student, seed):
    what, (x, _y), (expected, _expected_y), (images, labels) = _preprocessed(student, seed)
    with diagnosing(lambda: preprocess_mistake(x, images, labels, part="images",
                                                expected_shape=expected.shape)):
        assert_close(x, expected,
                     _("{what}: x (flattened pixels / 255, values in [0, 1])", what=what),
                     rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_one_hot_labels(student, seed):
    what, (_x, y), (_expected_x, expected), (images, labels) = _preprocessed(student, seed)
    with diagnosing(lambda: preprocess_mistake(y, images, labels, part="labels")):
        assert_close(y, expected, _("{what}: y (one-hot rows, a 1 at each label)", what=what))


# -- the Sequential MLP ----------------------------------------------------------------------

def test_sequential_layer_kinds(student):
    _layers_check(student, "build_sequential_mlp", SEQUENTIAL, ("kinds",), compare_kinds,
                  _("layer kinds and order"))


def test_sequential_units(student):
    _layers_check(student, "build_sequential_mlp", SEQUENTIAL, ("units",), compare_units,
                  _("units"))


def test_sequential_activations(student):
    # other units cost the units part only (layers still line up by their units)
    _layers_check(student, "build_sequential_mlp", SEQUENTIAL, ("activation",),
                  compare_activations_only, _("activations"))


def test_sequential_optimizer(student):
    _compile_check(student, "build_sequential_mlp", lambda info: compare_optimizer(info, "SGD"),
                   _("optimizer"), optimizer="SGD")


def test_sequential_learning_rate(student):
    _compile_check(student, "build_sequential_mlp",
                   lambda info: compare_learning_rate(info, LEARNING_RATE),
                   _("the optimizer's learning rate"), learning_rate=LEARNING_RATE)


def test_sequential_loss(student):
    _compile_check(student, "build_sequential_mlp",
                   lambda info: compare_loss(info, SEQUENTIAL_LOSS), _("loss"),
                   loss=SEQUENTIAL_LOSS)


def test_sequential_metrics(student):
    _compile_check(student, "build_sequential_mlp", lambda info: compare_metrics(info, METRICS),
                   _("metrics"), metrics=METRICS)


# -- the functional MLP ----------------------------------------------------------------------

def test_functional_layers(student):
    _layers_check(student, "build_functional_mlp", FUNCTIONAL, ("kinds", "units"),
                  lambda found, spec: compare_kinds(found, spec) + compare_units(found, spec),
                  _("layers and units"))


def test_functional_activations(student):
    _layers_check(student, "build_functional_mlp", FUNCTIONAL, ("activation",),
                  compare_activations_only, _("activations"))


def test_functional_compile(student):
    # A from_logits loss on the softmax output is the loss on the wrong numbers.
    _compile_check(student, "build_functional_mlp",
                   lambda info: compare_optimizer(info, "RMSprop")
                   + compare_loss(info, FUNCTIONAL_LOSS) + compare_logits(info)
                   + compare_metrics(info, METRICS), _("compile settings"),
                   optimizer="RMSprop", loss=FUNCTIONAL_LOSS, metrics=METRICS)


# -- accuracy under the budget ----------------------------------------------------------------

def test_sequential_accuracy(student, assignment, dataset, device, private_split, credit,
                             figure):
    try:
        threshold = threshold_for(assignment, "test_sequential_accuracy", dataset.name, device)
    except NoCalibration as exc:
        pytest.skip(_("no accuracy threshold for {dataset} on the {device}: {error}",
                      dataset=dataset.name, device=device, error=exc))
    budget = AccuracyBudget.from_config(assignment, "test_sequential_accuracy", device)
    split = private_split(budget.test_images, "test_sequential_accuracy")
    with keras_hints(student):
        run = measure_accuracy(student, module=MODULE, build="build_sequential_mlp",
                               split=split, dataset=dataset, budget=budget)
    _score_accuracy(run, threshold, _("`build_sequential_mlp()` trained {budget}",
                                      budget=budget.describe()),
                    credit, figure)


def _score_accuracy(run, threshold, what: str, credit, figure) -> None:
    """Figures (curve, confusion matrix, accuracy); full points at the threshold, linear down to
    the floor."""
    figure("learning_curve", {key: list(values) for key, values in run.history.items()})
    figure("confusion_matrix", {"matrix": np.asarray(run.confusion).tolist(),
                                "labels": list(range(NUM_CLASSES))})
    stopped = f" ({run.budget_message})" if run.stopped_by_budget else ""
    if stopped:
        credit.note(run.budget_message)
    score_accuracy(run.accuracy, threshold=threshold.value, floor=threshold.floor, what=what,
                   credit=credit, figure=figure, images=int(np.asarray(run.confusion).sum()),
                   stopped=run.budget_message if run.stopped_by_budget else "")
