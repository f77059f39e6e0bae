"""Public checks for `keras_mlp`: shapes, parameter counts and the untrained model's behaviour.

These ship with the assignment (`grader check`). They need neither the reference
solution nor any dataset: the inputs are random images, and the expected numbers
are the ones the instructions give (407,050 and 55,050 parameters). A model is judged
from its config (plain data): the parameter count is computed here, and the untrained
model it declares runs in the grader's evaluator, never in the student's process.
"""

from __future__ import annotations

import numpy as np

from grader.checks.arrays import as_array, assert_shape
from grader.checks.keras_hints import keras_hints, step_failure
from grader.checks.keras_outputs import assert_probability_rows
from grader.checks.keras_outputs import step_batch as one_step_batch
from grader.evaluator.artifact import loss_after_one_step, read_model, untrained_predictions
from grader.evaluator.spec import describe
from grader.grading.fixtures import course_messages

NUM_CLASSES = 10
INPUT_DIM = 28 * 28
SEQUENTIAL_PARAMS = 407_050  # 784*512 + 512 + 512*10 + 10
FUNCTIONAL_PARAMS = 55_050  # 784*64 + 64 + 64*64 + 64 + 64*10 + 10
BATCH = 8
STEP_BATCH = 32  # the one-step check: one full batch, the same before and after the step
STEP_SEED = 2  # its inputs
STEP_INIT_SEED = 0  # the grader's initialisation of the declared model

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, size=n).astype(np.uint8))


def _spec(student, name: str):
    """The spec of the student's compiled model; Keras 3 spelling mistakes become hints."""
    with keras_hints(student):
        return read_model(student, getattr(student.keras_mlp, name)(), what=f"`{name}()`")


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair (x, y)", what=what,
                               type=type(received).__name__))
    return received


def test_preprocess_shapes_and_dtypes(student):
    images, labels = _images(6)
    what = _("`preprocess(images, labels)` with images (6, 28, 28) uint8")
    x, y = _pair(student.keras_mlp.preprocess(images, labels), what)
    x = assert_shape(x, (6, INPUT_DIM), f"{what}: x")
    y = assert_shape(y, (6, NUM_CLASSES), _("{what}: y (one-hot rows)", what=what))
    for name, array in (("x", x), ("y", y)):
        assert array.dtype == np.float32, _(
            "{what}: {name} has dtype {dtype}; expected float32", what=what, name=name,
            dtype=array.dtype)


# The parameter counts follow from the layers and units (a wrong size changes them): they
# are public previews with no points of their own (issue 10: no double charge).
def test_sequential_parameter_count(student):
    info = describe(_spec(student, "build_sequential_mlp"))
    assert info["params"] == SEQUENTIAL_PARAMS, _(
        "`build_sequential_mlp()` has {found} parameters; expected {expected} (Dense(512) on "
        "784 inputs, then Dense(10))", found=f"{info['params']:,}",
        expected=f"{SEQUENTIAL_PARAMS:,}")


def test_functional_parameter_count(student):
    info = describe(_spec(student, "build_functional_mlp"))
    assert info["params"] == FUNCTIONAL_PARAMS, _(
        "`build_functional_mlp()` has {found} parameters; expected {expected} (Dense(64), "
        "Dense(64), Dense(10) on 784 inputs)", found=f"{info['params']:,}",
        expected=f"{FUNCTIONAL_PARAMS:,}")


def test_sequential_outputs_are_probabilities(student):
    spec = _spec(student, "build_sequential_mlp")
    x = np.random.default_rng(1).uniform(0, 1, size=(BATCH, INPUT_DIM)).astype(np.float32)
    what = _("the untrained model `build_sequential_mlp()` declares, run on a batch of {n}",
             n=BATCH)
    probs = assert_shape(as_array(untrained_predictions(student, spec, x, what=what), what),
                         (BATCH, NUM_CLASSES), what)
    assert_probability_rows(probs, what)


def step_batch() -> tuple[np.ndarray, np.ndarray]:
    """The one-step check's batch (`grader.checks.keras_outputs.step_batch`); every correct
    model lowers its loss on it from the grader's initialisation."""
    return one_step_batch((INPUT_DIM,), batch=STEP_BATCH, seed=STEP_SEED,
                          num_classes=NUM_CLASSES)


def test_sequential_training_step_lowers_loss(student):
    spec = _spec(student, "build_sequential_mlp")
    x, y = step_batch()
    step = loss_after_one_step(student, spec, x, y, what="`build_sequential_mlp()`",
                               seed=STEP_INIT_SEED)
    # a missing softmax, a from_logits loss on softmax, a diverging rate are named
    step_failure(spec, step, "`build_sequential_mlp()`", batch=STEP_BATCH)
