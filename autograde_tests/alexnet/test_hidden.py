"""Hidden checks for `alexnet`: preprocessing values, the pipeline, the architecture of both
blocks, compile settings, saved weights and accuracy.

Each aspect is its own test, so one wrong setting costs only its own points. The
model is built, saved and reloaded in the student runtime and handed over as plain
data: the configs of its blocks (`conv`, `fc`) and its weights. The grader reads the
subclassed model as its blocks chained in order, and accepts that reading only when the
chain, rebuilt in the grader's evaluator with the student's own weights, predicts what
the student's model predicts on random inputs (`grader.evaluator.artifact`). The
architecture is checked here; training and prediction happen in the evaluator, a clean
sandboxed process, on a private split of the test images whose labels stay here; the
saved-weights test compares weight arrays here. Expected values are computed with
numpy, so this process never imports TensorFlow.
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
    compare_learning_rate,
    compare_logits,
    compare_loss,
    compare_metrics,
    compare_optimizer,
    compare_units,
)
from grader.checks.arrays import as_array, assert_close
from grader.checks.keras_diagnoses import (
    compile_mistake,
    diagnosing,
    layer_mistake,
    preprocess_mistake,
    require,
    shuffle_mistake,
)
from grader.checks.keras_hints import keras_hints
from grader.evaluator.artifact import CONTAINERS, MAX_DEPTH, model_weights, read_model
from grader.evaluator.spec import describe
from grader.grading.fixtures import course_messages

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
LEARNING_RATE = 1e-4
DROPOUT_RATE = 0.4
WEIGHTS_PATH = "checkpoint/grader-check.weights.h5"  # inside the submission's workspace
RELOAD_RTOL = 1e-5  # the same weights on the same inputs: equal up to float32 rounding
RELOAD_ATOL = 1e-6
RELOAD_SEED = 7  # the perturbation the reload check adds; any fixed seed will do
RELOAD_NOISE = 0.05  # far above float32 rounding, small enough to keep the weights sane
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

_, _n = course_messages(__file__)  # this suite's messages, in the course's catalog


def _only(specs, *settings: str) -> list[LayerSpec]:
    """The specs with only the named settings checked."""
    unchecked = {f.name: None for f in dataclasses.fields(LayerSpec)
                 if f.name != "kind" and f.name not in settings}
    return [dataclasses.replace(spec, **unchecked) for spec in specs]


def _of(layers: list[dict], kinds) -> list[dict]:
    return [layer for layer in layers if layer["class"] in kinds]

_read: dict = {}  # one read per submission: AlexNet takes seconds to build and verify


def _spec(student):
    """The spec of the student's `build_alexnet()` (its blocks, verified on random inputs)."""
    if "spec" not in _read:
        with keras_hints(student):
            model = student.alexnet.build_alexnet()
            _read["spec"] = read_model(student, model, what="`build_alexnet()`",
                                       input_shape=INPUT_SHAPE)
    return _read["spec"]


def _info(student) -> dict:
    """The description of the student's AlexNet, read from its blocks' configs here."""
    return describe(_spec(student))


def _layers_check(problems, found, specs, names: tuple[str, ...], what: str,
                  input_shape=None) -> None:
    """One layer aspect; a difference names its known mistake when it has one."""
    require(problems, what, lambda: layer_mistake(found, specs, names, model="AlexNet",
                                                  input_shape=input_shape))


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


def _expected(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What `preprocess` must give, in numpy: pixels / 255 with a channel axis; one-hot."""
    return ((images.astype(np.float32) / 255.0)[..., None],
            np.eye(NUM_CLASSES, dtype=np.float32)[labels])


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


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, size=n).astype(np.int64))


def _preprocessed(student, case: str):
    images, labels = _images(5, seed=3)
    if case == "one example":
        what = _("`preprocess(x, y)` with one image (28, 28) and its label")
        x, y = _pair(student.alexnet.preprocess(images[0], int(labels[0])), what)
        expected = _expected(images[:1], labels[:1])
        return (what, _array(x, what)[None], _array(y, what)[None], expected,
                (images[:1], labels[:1]))
    what = _("`preprocess(x, y)` with a batch of 5 images (5, 28, 28) and labels (5,)")
    x, y = _pair(student.alexnet.preprocess(images, labels), what)
    return what, _array(x, what), _array(y, what), _expected(images, labels), (images, labels)


# -- preprocessing and the pipeline -------------------------------------------------------

@pytest.mark.parametrize("case", ["one example", "batch"])
def test_preprocess_scales_images(student, case):
    what, x, _y, (expected, _expected_y), (images, labels) = _preprocessed(student, case)
    with diagnosing(lambda: preprocess_mistake(x, images, labels, part="images",
                                                expected_shape=expected.shape)):
        assert_close(x, expected,
                     _("{what}: x (float32 pixels / 255, with a channel axis)", what=what),
                     rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ["one example", "batch"])
def test_preprocess_one_hot_labels(student, case):
    what, _x, y, (_expected_x, expected), (images, labels) = _preprocessed(student, case)
    with diagnosing(lambda: preprocess_mistake(y, images, labels, part="labels")):
        assert_close(y, expected, _("{what}: y (one-hot, depth 10)", what=what))


def test_make_datasets_test_set_in_order(student):
    x_train, y_train = _images(6, seed=4)
    x_test, y_test = _images(10, seed=5)
    what = _("`make_datasets(...)` with 10 test images and batch_size={batch}: test_db "
             "(`preprocess` mapped over the test set, in order)", batch=PIPELINE_BATCH)
    with keras_hints(student):
        _train_db, test_db = _pair(student.alexnet.make_datasets(
            x_train, y_train, x_test, y_test, batch_size=PIPELINE_BATCH), "`make_datasets`")
        batches = [_pair(batch, what) for batch in _batches(test_db, what)]
    expected_x, expected_y = _expected(x_test, y_test)
    x = np.concatenate([as_array(b[0], what) for b in batches]) if batches else np.zeros(0)
    y = np.concatenate([as_array(b[1], what) for b in batches]) if batches else np.zeros(0)
    with diagnosing(lambda: preprocess_mistake(x, x_test, y_test, part="images",
                                                expected_shape=expected_x.shape)):
        assert_close(x, expected_x, _("{what}: the images", what=what), rtol=1e-6, atol=1e-6)
    with diagnosing(lambda: preprocess_mistake(y, x_test, y_test, part="labels")):
        assert_close(y, expected_y, _("{what}: the labels", what=what))


def _pairs(x: np.ndarray, y: np.ndarray) -> list[tuple[bytes, int]]:
    """(image, label) pairs as comparable data: the image rounded to 1/255 steps, the label's
    class (the argmax of a one-hot row)."""
    images = np.rint(np.asarray(x, dtype=np.float64).reshape(len(x), -1) * 255).astype(np.int64)
    labels = np.asarray(y, dtype=np.float64).reshape(len(y), -1).argmax(axis=1)
    return [(image.tobytes(), int(label)) for image, label in zip(images, labels, strict=True)]


def test_make_datasets_train_set_keeps_pairs(student):
    """Shuffling is the student's choice; each image must keep its own label."""
    x_train, y_train = _images(12, seed=6)
    x_test, y_test = _images(4, seed=7)
    what = _("`make_datasets(...)` with 12 training images and batch_size={batch}: "
             "train_db's (image, label) pairs, in any order", batch=PIPELINE_BATCH)
    with keras_hints(student):
        train_db, _test_db = _pair(student.alexnet.make_datasets(
            x_train, y_train, x_test, y_test, batch_size=PIPELINE_BATCH), "`make_datasets`")
        batches = [_pair(batch, what) for batch in _batches(train_db, what)]
    x = np.concatenate([as_array(b[0], what) for b in batches]) if batches else np.zeros(0)
    y = np.concatenate([as_array(b[1], what) for b in batches]) if batches else np.zeros(0)
    assert len(x) == len(y) == len(x_train), _(
        "{what}: {images} images and {labels} labels came back; expected {expected} of each",
        what=what, images=len(x), labels=len(y), expected=len(x_train))
    expected = _pairs(*_expected(x_train, y_train))
    found = _pairs(x, y)
    if sorted(found) != sorted(expected):
        message = _("{what}: {wrong} of {total} images came with a label that is not their own "
                    "(or with pixels that are not the image / 255)", what=what,
                    wrong=sum(1 for pair in found if pair not in expected), total=len(found))
        mistake = shuffle_mistake(found, expected)
        require([message], "`make_datasets`", lambda: mistake)


# -- architecture -------------------------------------------------------------------------

def test_conv_block_layers(student):
    conv = _of(_info(student)["layers"], CONV_KINDS)
    filters = _only(CONV_BLOCK, "filters")
    _layers_check(compare_kinds(conv, CONV_BLOCK) + compare_units(conv, filters), conv, filters,
                  ("kinds", "filters"), _("`AlexNet.conv`: layers and filters"))


def test_conv_block_settings(student):
    info = _info(student)
    conv = _of(info["layers"], CONV_KINDS)
    specs = _only(CONV_BLOCK, "kernel_size", "strides", "padding", "pool_size")
    _layers_check(compare_geometry(conv, specs), conv, specs,
                  ("padding", "kernel_size", "strides", "pool_size"),
                  _("`AlexNet.conv`: kernel sizes, pool sizes, strides and padding"),
                  input_shape=info.get("input_shape"))


def test_fc_block_layers(student):
    dense = _of(_info(student)["layers"], ("Dense",))
    fc = _only([spec for spec in FC_BLOCK if spec.kind == "Dense"], "units")
    _layers_check(compare_kinds(dense, fc) + compare_units(dense, fc), dense, fc,
                  ("kinds", "units"), _("`AlexNet.fc`: Dense layers and units"))


def test_activations(student):
    layers = [layer for layer in _info(student)["layers"]
              if layer["class"] not in ("Dropout", *FLATTENING)]
    expected = _only([spec for spec in CONV_BLOCK + FC_BLOCK if spec.kind != "Dropout"],
                     "activation")
    _layers_check(compare_activations(layers, expected), layers, expected, ("activation",),
                  _("`AlexNet`: activations"))


def test_dropout(student):
    layers = _of(_info(student)["layers"], ("Dense", "Dropout"))
    _layers_check(compare_dropout(layers, FC_BLOCK), layers, FC_BLOCK, ("rate",),
                  _("`AlexNet.fc`: Dropout (its places and rate)"))


def test_optimizer(student):
    info = _info(student)
    require(compare_optimizer(info, "Adam") + compare_learning_rate(info, LEARNING_RATE),
            _("`build_alexnet()`: optimizer"),
            lambda: compile_mistake(info, optimizer="Adam", learning_rate=LEARNING_RATE,
                                    model="AlexNet"))


def test_loss_and_metrics(student):
    info = _info(student)
    require(compare_loss(info, LOSS) + compare_logits(info) + compare_metrics(info, METRICS),
            _("`build_alexnet()`: loss and metrics"),
            lambda: compile_mistake(info, loss=LOSS, metrics=METRICS, model="AlexNet"))


# -- saved weights -------------------------------------------------------------------------

def _perturb(layer, rng: np.random.Generator, depth: int = 0) -> None:
    """Adds noise to every weight array, leaf layer by leaf layer (one array per message)."""
    kind = getattr(layer, "type_name", "")
    if kind == "InputLayer":
        return
    inner = layer.layers if depth <= MAX_DEPTH and (kind in CONTAINERS or depth == 0) else None
    if isinstance(inner, list) and inner:
        for sub in inner:
            _perturb(sub, rng, depth + 1)
        return
    weights = layer.get_weights()
    if not isinstance(weights, list) or not all(isinstance(w, np.ndarray) for w in weights):
        raise AssertionError(_("`{kind}.get_weights()` did not return a list of arrays",
                               kind=kind))
    if weights:
        layer.set_weights([(w + rng.normal(0.0, RELOAD_NOISE, w.shape)).astype(w.dtype)
                           for w in weights])


def test_saved_weights_reload(student):
    spec = _spec(student)
    what = f"`load_weights({WEIGHTS_PATH!r})` after `save_weights(model, {WEIGHTS_PATH!r})`"
    rng = np.random.default_rng(RELOAD_SEED)
    with keras_hints(student):
        model = student.alexnet.build_alexnet()
        built = model_weights(model, spec, "`build_alexnet()`")
        # The check perturbs the weights itself: a build that seeds itself (allowed) gives
        # equal weights each time, and loading must still restore these, not the build's.
        _perturb(model, rng)
        before = model_weights(model, spec, _("`build_alexnet()` with perturbed weights"))
        student.alexnet.save_weights(model, WEIGHTS_PATH)
        after = model_weights(student.alexnet.load_weights(WEIGHTS_PATH), spec,
                              _("the model `load_weights` returned"))
    assert not any(np.array_equal(a, b) for a, b in zip(built, before, strict=True)), _(
        "`model.set_weights` did not change the weights of `build_alexnet()`'s model; the "
        "reload check needs weights that differ from a fresh build's")
    for index, (found, expected) in enumerate(zip(after, before, strict=True)):
        assert_close(found, expected,
                     _("{what}: weight array {index} of {total} (shape {shape}); the model was "
                       "saved with weights that differ from a fresh build's, and loading must "
                       "restore them", what=what, index=index + 1, total=len(before),
                       shape=expected.shape),
                     rtol=RELOAD_RTOL, atol=RELOAD_ATOL)


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
        run = measure_accuracy(student, module="alexnet", build="build_alexnet", split=split,
                               dataset=dataset, budget=budget, input_shape=INPUT_SHAPE)
    what = _("`build_alexnet()` trained {budget}", budget=budget.describe())
    figure("learning_curve", {key: list(values) for key, values in run.history.items()})
    figure("confusion_matrix", {"matrix": np.asarray(run.confusion).tolist(),
                                "labels": list(range(NUM_CLASSES))})
    stopped = f" ({run.budget_message})" if run.stopped_by_budget else ""
    if stopped:
        credit.note(run.budget_message)
    score_accuracy(run.accuracy, threshold=threshold.value, floor=threshold.floor, what=what,
                   credit=credit, figure=figure, images=int(np.asarray(run.confusion).sum()),
                   stopped=run.budget_message if run.stopped_by_budget else "")
