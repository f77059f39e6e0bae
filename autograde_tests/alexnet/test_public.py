"""Public checks for `alexnet`: `preprocess` shapes, the pipeline's batches, the parameter
count and the untrained model's behaviour.

These ship with the assignment (`grader check`). They need neither the reference
solution nor any dataset: the inputs are random images, and the expected numbers
are the ones the instructions give (27,672,714 parameters). The model is judged from
its blocks' configs (plain data, verified against the model on random inputs): the
parameter count is computed here, and the untrained model runs in the grader's
evaluator, never in the student's process.
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
PARAMS = 27_672_714
BATCH = 4
STEP_BATCH = 16  # the one-step check: one full batch, the same before and after the step
STEP_SEED = 2  # its inputs
STEP_INIT_SEED = 0  # the grader's initialisation of the declared model

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


_read: dict = {}  # one read per submission: AlexNet takes seconds to build and verify


def _spec(student):
    """The spec of the student's `build_alexnet()` (its blocks, verified on random inputs)."""
    if "spec" not in _read:
        with keras_hints(student):
            model = student.alexnet.build_alexnet()
            _read["spec"] = read_model(student, model, what="`build_alexnet()`",
                                       input_shape=INPUT_SHAPE)
    return _read["spec"]


def _array(received, what: str) -> np.ndarray:
    """A tensor that came back as a handle, converted in the runtime; arrays pass through."""
    if isinstance(received, np.ndarray):
        return received
    try:
        return np.asarray(received)
    except Exception as exc:  # noqa: BLE001 - whatever it was, say what came back
        raise AssertionError(_("{what} returned {received}, which is not a tensor or an array "
                               "({error})", what=what, received=f"{received!r:.100}",
                               error=exc)) from None


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair", what=what,
                               type=type(received).__name__))
    return received


def _check(x, y, x_shape, y_shape, what: str) -> None:
    x = assert_shape(_array(x, f"{what}: x"), x_shape, f"{what}: x")
    y = assert_shape(_array(y, f"{what}: y"), y_shape, _("{what}: y (one-hot)", what=what))
    for name, array in (("x", x), ("y", y)):
        assert array.dtype == np.float32, _(
            "{what}: {name} has dtype {dtype}; expected float32", what=what, name=name,
            dtype=array.dtype)


def _batches(db, what: str) -> list:
    """Every batch of a student's `tf.data.Dataset`, as numpy arrays (iterated in the runtime)."""
    try:
        count = len(db)
    except Exception as exc:  # noqa: BLE001 - an infinite or unknown-length pipeline
        raise AssertionError(_("{what}: the dataset has no known length ({error}); expected a "
                               "finite pipeline (from_tensor_slices, map, batch)", what=what,
                               error=exc)) from None
    iterator = db.as_numpy_iterator()
    return [iterator.next() for _batch in range(count)]


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, size=n).astype(np.int64))


def test_preprocess_shapes_one_example(student):
    images, labels = _images(1)
    what = _("`preprocess(x, y)` with x (28, 28) uint8 and a label")
    x, y = _pair(student.alexnet.preprocess(images[0], int(labels[0])), what)
    _check(x, y, INPUT_SHAPE, (NUM_CLASSES,), what)


def test_preprocess_shapes_batch(student):
    images, labels = _images(BATCH)
    what = _("`preprocess(x, y)` with a batch x ({n}, 28, 28) uint8 and y ({n},)", n=BATCH)
    x, y = _pair(student.alexnet.preprocess(images, labels), what)
    _check(x, y, (BATCH, *INPUT_SHAPE), (BATCH, NUM_CLASSES), what)


def test_make_datasets_batches(student):
    x_train, y_train = _images(10, seed=1)
    x_test, y_test = _images(6, seed=2)
    what = _("`make_datasets(x_train, y_train, x_test, y_test, batch_size=4)` (10 and 6 "
             "images)")
    with keras_hints(student):
        train_db, test_db = _pair(student.alexnet.make_datasets(
            x_train, y_train, x_test, y_test, batch_size=BATCH), what)
        for name, db, n in (("train_db", train_db, 10), ("test_db", test_db, 6)):
            batches = _batches(db, f"{what}: {name}")
            sizes = [len(_pair(batch, _("{what}: a batch of {name}", what=what, name=name))[0])
                     for batch in batches]
            expected = [min(BATCH, n - start) for start in range(0, n, BATCH)]
            assert sizes == expected, _(
                "{what}: {name} yields batches of sizes {sizes}; expected {expected} (all {n} "
                "images, {batch} a batch)", what=what, name=name, sizes=sizes,
                expected=expected, n=n, batch=BATCH)
            x, y = batches[0]
            _check(x, y, (BATCH, *INPUT_SHAPE), (BATCH, NUM_CLASSES),
                   _("{what}: {name}'s first batch", what=what, name=name))


# The parameter count follows from the architecture items (a 'valid' padding changes it):
# a public preview with no points of its own (issue 10: no double charge).
def test_parameter_count(student):
    info = describe(_spec(student))
    assert info["params"] == PARAMS, _(
        "`build_alexnet()` has {found} parameters; expected {expected} once built (call the "
        "model once on a batch such as keras.ops.zeros((1, 28, 28, 1)))",
        found=f"{info['params']:,}", expected=f"{PARAMS:,}")


def test_outputs_are_probabilities(student):
    spec = _spec(student)
    x = np.random.default_rng(1).uniform(0, 1, size=(BATCH, *INPUT_SHAPE)).astype(np.float32)
    what = _("the untrained model `build_alexnet()` declares, run on a batch of {n}", n=BATCH)
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
    step = loss_after_one_step(student, spec, x, y, what="`build_alexnet()`",
                               seed=STEP_INIT_SEED)
    # a missing softmax is named, not the optimizer (a None loss is not finite)
    step_failure(spec, step, "`build_alexnet()`", batch=STEP_BATCH)
