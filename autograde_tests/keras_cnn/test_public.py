"""Public checks for `keras_cnn`: shapes, the parameter count and the untrained model's behaviour.

These ship with the assignment (`grader check`). They need neither the reference
solution nor any dataset: the inputs are random images, and the expected numbers
are the ones the instructions give (82,934 parameters). The model is judged from its
config (plain data): the parameter count is computed here, and the untrained model it
declares runs in the grader's evaluator, never in the student's process.
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
INPUT_SHAPE = (28, 28, 1)
PARAMS = 82_934  # 208 + 3,216 + 78,500 + 1,010
BATCH = 8
STEP_BATCH = 32  # the one-step check: one full batch, the same before and after the step
STEP_SEED = 2  # its inputs
STEP_INIT_SEED = 0  # the grader's initialisation of the declared model

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


def _spec(student):
    """The spec of the student's compiled CNN; Keras 3 spelling mistakes become hints."""
    with keras_hints(student):
        return read_model(student, student.keras_cnn.build_cnn(), what="`build_cnn()`")


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair (x, y)", what=what,
                               type=type(received).__name__))
    return received


def test_preprocess_shapes_and_dtypes(student):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=6).astype(np.uint8)
    what = _("`preprocess(images, labels)` with images (6, 28, 28) uint8")
    x, y = _pair(student.keras_cnn.preprocess(images, labels), what)
    x = assert_shape(x, (6, *INPUT_SHAPE), _("{what}: x (a channel axis added)", what=what))
    y = assert_shape(y, (6, NUM_CLASSES), _("{what}: y (one-hot rows)", what=what))
    for name, array in (("x", x), ("y", y)):
        assert array.dtype == np.float32, _(
            "{what}: {name} has dtype {dtype}; expected float32", what=what, name=name,
            dtype=array.dtype)


def test_parameter_count(student):
    info = describe(_spec(student))
    assert info["params"] == PARAMS, _(
        "`build_cnn()` has {found} parameters; expected {expected} (two 5x5 convolutions with "
        "'same' padding, 2x2 pooling, Dense(100), Dense(10))", found=f"{info['params']:,}",
        expected=f"{PARAMS:,}")


def test_outputs_are_probabilities(student):
    spec = _spec(student)
    x = np.random.default_rng(1).uniform(0, 1, size=(BATCH, *INPUT_SHAPE)).astype(np.float32)
    what = _("the untrained model `build_cnn()` declares, run on a batch of {n}", n=BATCH)
    probs = assert_shape(as_array(untrained_predictions(student, spec, x, what=what), what),
                         (BATCH, NUM_CLASSES), what)
    assert_probability_rows(probs, what)


def step_batch() -> tuple[np.ndarray, np.ndarray]:
    """The one-step check's batch (`grader.checks.keras_outputs.step_batch`); every correct
    model lowers its loss on it from the grader's initialisation."""
    return one_step_batch(INPUT_SHAPE, batch=STEP_BATCH, seed=STEP_SEED,
                          num_classes=NUM_CLASSES)


def test_training_step_lowers_loss(student):
    spec = _spec(student)
    x, y = step_batch()
    step = loss_after_one_step(student, spec, x, y, what="`build_cnn()`", seed=STEP_INIT_SEED)
    # a missing softmax is named, not the optimizer
    step_failure(spec, step, "`build_cnn()`", batch=STEP_BATCH)
