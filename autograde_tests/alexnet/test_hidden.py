"""Hidden checks for `alexnet`: preprocessing values, the pipeline, the architecture of both
blocks, compile settings, saved weights and accuracy.

Each aspect is its own test, so one wrong setting costs only its own points. The
model is built, saved, reloaded and trained inside the student runtime; only its
description and its predictions come back, and the accuracy is computed here
against test labels that never enter the runtime. Expected values are computed
with numpy, so this process never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grader.calibration import NoCalibration, threshold_for
from grader.checks.accuracy import AccuracyBudget, measure_accuracy
from grader.checks.architecture import (
    LayerSpec,
    compare_activations,
    compare_dropout,
    compare_geometry,
    compare_kinds,
    compare_learning_rate,
    compare_loss,
    compare_metrics,
    compare_optimizer,
    compare_units,
)
from grader.checks.arrays import as_array, assert_close
from grader.checks.keras_hints import keras_hints

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
LEARNING_RATE = 1e-4
DROPOUT_RATE = 0.4
WEIGHTS_PATH = "checkpoint/grader-check.weights.h5"  # inside the submission's workspace
RELOAD_RTOL = 1e-5  # the same weights on the same inputs: equal up to float32 rounding
RELOAD_ATOL = 1e-6
PIPELINE_BATCH = 4

_CONV = dict(kernel_size=(3, 3), strides=(1, 1), padding="same", activation="relu")
_POOL = dict(pool_size=(2, 2), strides=(2, 2), padding="same")
CONV_BLOCK = (
    LayerSpec("Conv2D", filters=16, **_CONV),
    LayerSpec("MaxPooling2D", **_POOL),
    LayerSpec("Conv2D", filters=32, **_CONV),
    LayerSpec("MaxPooling2D", **_POOL),
    LayerSpec("Conv2D", filters=64, **_CONV),
    LayerSpec("Conv2D", filters=128, **_CONV),
    LayerSpec("Conv2D", filters=256, **_CONV),
    LayerSpec("MaxPooling2D", **_POOL),
)
FC_BLOCK = (
    LayerSpec("Dense", units=4096, activation="relu"),
    LayerSpec("Dropout", rate=DROPOUT_RATE),
    LayerSpec("Dense", units=2048, activation="relu"),
    LayerSpec("Dropout", rate=DROPOUT_RATE),
    LayerSpec("Dense", units=1024, activation="relu"),
    LayerSpec("Dropout", rate=DROPOUT_RATE),
    LayerSpec("Dense", units=NUM_CLASSES, activation="softmax"),
)
LOSS = ("categorical_crossentropy",)  # the class, an instance or the string
METRICS = ("accuracy",)  # "acc" and CategoricalAccuracy() count too
CONV_KINDS = ("Conv2D", "MaxPooling2D", "MaxPool2D")
FLATTENING = ("Flatten", "Reshape")  # flattening with a layer or with tf.reshape both count


def _only(specs, *settings: str) -> list[LayerSpec]:
    """The specs with only the named settings checked."""
    unchecked = {f.name: None for f in dataclasses.fields(LayerSpec)
                 if f.name != "kind" and f.name not in settings}
    return [dataclasses.replace(spec, **unchecked) for spec in specs]


def _of(layers: list[dict], kinds) -> list[dict]:
    return [layer for layer in layers if layer["class"] in kinds]

_described: dict[str, dict] = {}  # one build per submission: AlexNet takes seconds to build


def _info(student) -> dict:
    """`describe_model` of the student's `build_alexnet()`, traced on a (1, 28, 28, 1) batch."""
    if "info" not in _described:
        with keras_hints():
            model = student.alexnet.build_alexnet()
        _described["info"] = student.tool("describe_model", model, input_shape=INPUT_SHAPE)
    return _described["info"]


def _require(problems: list[str], what: str) -> None:
    assert not problems, f"{what}:\n" + "\n".join(problems)


def _array(received, what: str) -> np.ndarray:
    """A tensor that came back as a handle, converted in the runtime; arrays pass through."""
    if isinstance(received, np.ndarray):
        return received
    try:
        return np.asarray(received)
    except Exception as exc:  # noqa: BLE001 - whatever it was, say what came back
        raise AssertionError(f"{what} returned {received!r:.100}, which is not a tensor or an "
                             f"array ({exc})") from None


def _pair(received, what: str):
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(f"{what} returned {type(received).__name__}; expected a pair")
    return received


def _expected(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What `preprocess` must give, in numpy: pixels / 255 with a channel axis; one-hot."""
    return ((images.astype(np.float32) / 255.0)[..., None],
            np.eye(NUM_CLASSES, dtype=np.float32)[labels])


def _batches(db, what: str) -> list:
    """Every batch of a student's `tf.data.Dataset`, as numpy arrays (iterated in the runtime)."""
    try:
        count = len(db)
    except Exception as exc:  # noqa: BLE001 - an infinite or unknown-length pipeline
        raise AssertionError(f"{what}: the dataset has no known length ({exc}); expected a "
                             "finite pipeline (from_tensor_slices, map, batch)") from None
    iterator = db.as_numpy_iterator()
    return [iterator.next() for _ in range(count)]


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, size=n).astype(np.int64))


def _preprocessed(student, case: str):
    images, labels = _images(5, seed=3)
    if case == "one example":
        what = "`preprocess(x, y)` with one image (28, 28) and its label"
        x, y = _pair(student.alexnet.preprocess(images[0], int(labels[0])), what)
        expected = _expected(images[:1], labels[:1])
        return what, _array(x, what)[None], _array(y, what)[None], expected
    what = "`preprocess(x, y)` with a batch of 5 images (5, 28, 28) and labels (5,)"
    x, y = _pair(student.alexnet.preprocess(images, labels), what)
    return what, _array(x, what), _array(y, what), _expected(images, labels)


# -- preprocessing and the pipeline -------------------------------------------------------

@pytest.mark.parametrize("case", ["one example", "batch"])
def test_preprocess_scales_images(student, case):
    what, x, _, (expected, _) = _preprocessed(student, case)
    assert_close(x, expected, f"{what}: x (float32 pixels / 255, with a channel axis)",
                 rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ["one example", "batch"])
def test_preprocess_one_hot_labels(student, case):
    what, _, y, (_, expected) = _preprocessed(student, case)
    assert_close(y, expected, f"{what}: y (one-hot, depth 10)")


def test_make_datasets_test_set_in_order(student):
    x_train, y_train = _images(6, seed=4)
    x_test, y_test = _images(10, seed=5)
    what = (f"`make_datasets(...)` with 10 test images and batch_size={PIPELINE_BATCH}: "
            "test_db (`preprocess` mapped over the test set, in order)")
    with keras_hints():
        _, test_db = _pair(student.alexnet.make_datasets(
            x_train, y_train, x_test, y_test, batch_size=PIPELINE_BATCH), "`make_datasets`")
        batches = [_pair(batch, what) for batch in _batches(test_db, what)]
    expected_x, expected_y = _expected(x_test, y_test)
    x = np.concatenate([as_array(b[0], what) for b in batches]) if batches else np.zeros(0)
    y = np.concatenate([as_array(b[1], what) for b in batches]) if batches else np.zeros(0)
    assert_close(x, expected_x, f"{what}: the images", rtol=1e-6, atol=1e-6)
    assert_close(y, expected_y, f"{what}: the labels")


# -- architecture -------------------------------------------------------------------------

def test_conv_block_layers(student):
    conv = _of(_info(student)["layers"], CONV_KINDS)
    _require(compare_kinds(conv, CONV_BLOCK) + compare_units(conv, _only(CONV_BLOCK, "filters")),
             "`AlexNet.conv`: layers and filters")


def test_conv_block_settings(student):
    conv = _of(_info(student)["layers"], CONV_KINDS)
    _require(compare_geometry(conv, _only(CONV_BLOCK, "kernel_size", "strides", "padding",
                                          "pool_size")),
             "`AlexNet.conv`: kernel sizes, pool sizes, strides and padding")


def test_fc_block_layers(student):
    dense = _of(_info(student)["layers"], ("Dense",))
    fc = [spec for spec in FC_BLOCK if spec.kind == "Dense"]
    _require(compare_kinds(dense, fc) + compare_units(dense, _only(fc, "units")),
             "`AlexNet.fc`: Dense layers and units")


def test_activations(student):
    layers = [layer for layer in _info(student)["layers"]
              if layer["class"] not in ("Dropout", *FLATTENING)]
    expected = [spec for spec in CONV_BLOCK + FC_BLOCK if spec.kind != "Dropout"]
    _require(compare_activations(layers, _only(expected, "activation")),
             "`AlexNet`: activations")


def test_dropout(student):
    layers = _of(_info(student)["layers"], ("Dense", "Dropout"))
    _require(compare_dropout(layers, FC_BLOCK), "`AlexNet.fc`: Dropout (its places and rate)")


def test_optimizer(student):
    info = _info(student)
    _require(compare_optimizer(info, "Adam") + compare_learning_rate(info, LEARNING_RATE),
             "`build_alexnet()`: optimizer")


def test_loss_and_metrics(student):
    info = _info(student)
    _require(compare_loss(info, LOSS) + compare_metrics(info, METRICS),
             "`build_alexnet()`: loss and metrics")


# -- saved weights -------------------------------------------------------------------------

def test_saved_weights_reload(student):
    x = np.random.default_rng(6).uniform(0, 1, size=(8, *INPUT_SHAPE)).astype(np.float32)
    with keras_hints():
        model = student.alexnet.build_alexnet()
        before = as_array(model.predict(x, verbose=0), "`build_alexnet()`'s `predict`")
        student.alexnet.save_weights(model, WEIGHTS_PATH)
        fresh = student.alexnet.build_alexnet()
        unloaded = as_array(fresh.predict(x, verbose=0), "a second `build_alexnet()`")
        loaded = student.alexnet.load_weights(WEIGHTS_PATH)
        after = as_array(loaded.predict(x, verbose=0), "the model `load_weights` returned")
    assert not np.allclose(unloaded, before, rtol=RELOAD_RTOL, atol=RELOAD_ATOL), (
        "two calls of `build_alexnet()` gave models with identical predictions; expected "
        "freshly initialised weights, so that loading saved weights can be checked")
    assert_close(after, before, f"`load_weights({WEIGHTS_PATH!r})` after "
                 f"`save_weights(model, {WEIGHTS_PATH!r})`: predictions on 8 images",
                 rtol=RELOAD_RTOL, atol=RELOAD_ATOL)


# -- accuracy under the budget ----------------------------------------------------------------

def test_accuracy(student, assignment, dataset, device, credit, figure):
    try:
        threshold = threshold_for(assignment, "test_accuracy", dataset.name, device)
    except NoCalibration as exc:
        pytest.skip(f"no accuracy threshold for {dataset.name} on the {device}: {exc}")
    budget = AccuracyBudget.from_config(assignment, "test_accuracy", device)
    with keras_hints():
        run = measure_accuracy(student, module="alexnet", build="build_alexnet",
                               preprocess="preprocess", dataset=dataset, budget=budget)
    what = f"`build_alexnet()` trained {budget.describe()}"
    figure("learning_curve", {key: list(values) for key, values in run.history.items()})
    figure("confusion_matrix", {"matrix": np.asarray(run.confusion).tolist(),
                                "labels": list(range(NUM_CLASSES))})
    credit.note(f"threshold {threshold.value:.4f} from calibration {threshold.source}")
    stopped = f" ({run.budget_message})" if run.stopped_by_budget else ""
    if stopped:
        credit.note(run.budget_message)
    assert run.accuracy > threshold.floor, (
        f"{what} reached test accuracy {run.accuracy:.4f}{stopped}; expected at least "
        f"{threshold.value:.4f} (partial credit from {threshold.floor:.4f})")
    if run.accuracy < threshold.value:
        credit.set((run.accuracy - threshold.floor) / (threshold.value - threshold.floor),
                   f"{what} reached test accuracy {run.accuracy:.4f}{stopped}, below "
                   f"{threshold.value:.4f}: partial credit (none at {threshold.floor:.4f})")
