"""grader.checks.keras_diagnoses and the data-driven Keras hints, without a sandbox.

The diagnoses read what the suites already read: a model's description (plain dicts from
its config), the expected `LayerSpec` list, arrays, and the student's source parsed
grader-side. Here the descriptions come from configs written out as data (the red team's
config and variations of it), so these tests are fast; each planted bug's diagnosis
through the real pipeline is checked in tests/test_keras_suites.py. The one-step check's
inputs are proved here too: every correct model's loss falls on them, over several
initialisations (the `slow` tests, which train one step in this process).
"""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_redteam_keras_config import COMPILE, HOSTILE, MODEL, _paths, _replaced

from grader.checks.architecture import (
    LayerSpec,
    compare_dropout,
    compare_geometry,
    compare_kinds,
    compare_logits,
)
from grader.checks.diagnose import Diagnosed
from grader.checks.keras_diagnoses import (
    compile_mistake,
    diagnosing,
    layer_mistake,
    preprocess_mistake,
    require,
    shuffle_mistake,
)
from grader.checks.keras_hints import KERAS2_SPELLINGS, hint_for, keras_hints, step_failure
from grader.evaluator.spec import ModelRefused, ModelSpec, chain_spec, describe
from grader.runtime.errors import StudentError, StudentTimeout, TracebackLine

REPO = Path(__file__).resolve().parents[1]

CNN = (
    LayerSpec("Conv2D", filters=8, kernel_size=(5, 5), strides=(1, 1), padding="same",
              activation="relu"),
    LayerSpec("MaxPooling2D", pool_size=(2, 2), strides=(2, 2)),
    LayerSpec("Conv2D", filters=16, kernel_size=(5, 5), strides=(1, 1), padding="same",
              activation="relu"),
    LayerSpec("MaxPooling2D", pool_size=(2, 2), strides=(2, 2)),
    LayerSpec("Flatten"),
    LayerSpec("Dense", units=100, activation="relu"),
    LayerSpec("Dropout", rate=0.25),
    LayerSpec("Dense", units=10, activation="softmax"),
)


def _entry(kind: str, **config: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": kind, "config": {"name": kind, **config}}


def _cnn_config(conv2: dict[str, Any] | None = None, *, flatten: bool = True,
                dropout_first: bool = False, last: str = "softmax") -> dict[str, Any]:
    """The lecture's CNN as a Sequential config, with one planted change."""
    conv = dict(filters=16, kernel_size=[5, 5], strides=[1, 1], padding="same",
                activation="relu")
    conv.update(conv2 or {})
    hidden = [_entry("Dense", units=100, activation="relu"), _entry("Dropout", rate=0.25)]
    return {"name": "cnn", "layers": [
        _entry("InputLayer", batch_shape=[None, 28, 28, 1]),
        _entry("Conv2D", filters=8, kernel_size=[5, 5], strides=[1, 1], padding="same",
               activation="relu"),
        _entry("MaxPooling2D", pool_size=[2, 2], strides=[2, 2], padding="valid"),
        _entry("Conv2D", **conv),
        _entry("MaxPooling2D", pool_size=[2, 2], strides=[2, 2], padding="valid"),
        *([_entry("Flatten")] if flatten else []),
        *(hidden[::-1] if dropout_first else hidden),
        _entry("Dense", units=10, activation=last),
    ]}


def _info(config: dict[str, Any], compile_config: dict[str, Any] | None = None) -> dict:
    return describe(chain_spec(config, compile_config=compile_config or COMPILE))


def _without_dropout(info: dict) -> list[dict]:
    return [layer for layer in info["layers"] if layer["class"] != "Dropout"]


# -- layers ------------------------------------------------------------------------------


def test_the_reference_cnn_has_no_diagnosis() -> None:
    info = _info(_cnn_config())
    for names in (("kinds",), ("padding", "kernel_size", "strides", "pool_size"),
                  ("filters", "units"), ("activation",), ("rate",)):
        assert layer_mistake(info["layers"], CNN, names, model="CNN") is None


def test_valid_padding_is_named_with_the_feature_maps_it_gives() -> None:
    info = _info(_cnn_config({"padding": "valid"}))
    found = _without_dropout(info)
    expected = [spec for spec in CNN if spec.kind != "Dropout"]
    with pytest.raises(Diagnosed) as raised:
        require(compare_geometry(found, expected), "padding",
                lambda: layer_mistake(found, expected, ("padding",), model="CNN",
                                      input_shape=info["input_shape"]))
    assert raised.value.mistake == "keras_padding_valid"
    message = str(raised.value)
    assert "second Conv2D uses padding='valid'" in message
    assert "10x10 instead of 14x14" in message and "parameter count" in message


@pytest.mark.parametrize(("conv2", "names", "mistake"), [
    ({"kernel_size": [3, 3]}, ("kernel_size",), "keras_kernel_size"),
    ({"strides": [5, 5], "kernel_size": [5, 5]}, ("strides",), "keras_conv_positional_strides"),
    ({"strides": [2, 2]}, ("strides",), "keras_strides"),
    ({"filters": 32}, ("filters",), "keras_filters"),
    ({"activation": "tanh"}, ("activation",), "keras_activation"),
])
def test_each_conv_setting_is_named(conv2, names, mistake) -> None:
    info = _info(_cnn_config(conv2))
    found = layer_mistake(_without_dropout(info), CNN, names, model="CNN")
    assert found is not None and found.id == mistake
    assert "second Conv2D" in found.sentence


def test_missing_flatten_and_misplaced_dropout_and_softmax() -> None:
    info = _info(_cnn_config(flatten=False))
    assert compare_kinds(_without_dropout(info), CNN)
    assert layer_mistake(_without_dropout(info), CNN, ("kinds",)).id == "keras_missing_flatten"
    info = _info(_cnn_config(dropout_first=True))
    assert compare_dropout(info["layers"], CNN)
    assert layer_mistake(info["layers"], CNN, ("rate",)).id == "keras_dropout_misplaced"
    info = _info(_cnn_config(last="linear"))
    assert layer_mistake(_without_dropout(info), CNN, ("activation",)).id == \
        "keras_missing_softmax"


# -- compile settings ---------------------------------------------------------------------


def _compiled(optimizer: Any = "adam", loss: Any = "categorical_crossentropy",
              metrics: Any = ("accuracy",)) -> dict[str, Any]:
    return {"optimizer": optimizer, "loss": loss, "metrics": list(metrics)}


@pytest.mark.parametrize(("compile_config", "expected", "mistake"), [
    (_compiled(loss="sparse_categorical_crossentropy"), {"loss": ("categorical_crossentropy",)},
     "keras_sparse_loss_on_one_hot"),
    (_compiled(loss={"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}),
     {"loss": ("categorical_crossentropy",)}, "keras_from_logits_on_probabilities"),
    (_compiled(loss="mse"), {"loss": ("categorical_crossentropy",)}, "keras_loss"),
    (_compiled(optimizer="sgd"), {"optimizer": "Adam"}, "keras_optimizer"),
    (_compiled(optimizer={"class_name": "Adam", "config": {"learning_rate": 0.001}}),
     {"optimizer": "Adam", "learning_rate": 1e-4}, "keras_learning_rate"),
    (_compiled(metrics=("mse",)), {"metrics": ("accuracy",)}, "keras_metrics"),
])
def test_each_compile_mistake_is_named(compile_config, expected, mistake) -> None:
    info = _info(_cnn_config(), compile_config)
    found = compile_mistake(info, model="CNN", **expected)
    assert found is not None and found.id == mistake, found


def test_a_default_learning_rate_says_it_was_left_out() -> None:
    info = _info(_cnn_config(), _compiled(optimizer="adam"))
    found = compile_mistake(info, optimizer="Adam", learning_rate=1e-4, model="AlexNet")
    assert found.id == "keras_learning_rate" and "default" in found.sentence


def test_from_logits_on_a_softmax_output_is_a_difference_and_logits_are_not() -> None:
    logits = _compiled(loss={"class_name": "CategoricalCrossentropy",
                             "config": {"from_logits": True}})
    assert compare_logits(_info(_cnn_config(), logits))
    assert not compare_logits(_info(_cnn_config(last="linear"), logits))
    assert not compare_logits(_info(_cnn_config()))


def test_correct_compile_settings_have_no_diagnosis() -> None:
    info = _info(_cnn_config())
    assert compile_mistake(info, optimizer="Adam", learning_rate=0.001,
                           loss=("categorical_crossentropy",), metrics=("accuracy",)) is None


# -- preprocessing and the pipeline ------------------------------------------------------


def test_preprocess_mistakes_from_arrays() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5)
    unscaled = preprocess_mistake(images.astype(np.float32), images, labels, part="images")
    assert unscaled.id == "keras_images_unscaled"
    flat = preprocess_mistake(images / 255.0, images, labels, part="images",
                              expected_shape=(5, 28, 28, 1))
    assert flat.id == "keras_image_shape" and "channel axis" in flat.sentence
    assert preprocess_mistake(labels, images, labels, part="labels").id == \
        "keras_labels_not_one_hot"
    right = (images / 255.0)[..., None]
    assert preprocess_mistake(right * 0.5, images, labels, part="images",
                              expected_shape=right.shape) is None
    with pytest.raises(Diagnosed) as raised, diagnosing(
            lambda: preprocess_mistake(labels, images, labels, part="labels")):
        raise AssertionError("y: expected one-hot rows")
    assert raised.value.mistake == "keras_labels_not_one_hot"


def test_images_and_labels_shuffled_separately() -> None:
    pairs = [(bytes([i]), i % 3) for i in range(6)]
    separately = [(image, label) for (image, _), (_, label) in zip(pairs, pairs[::-1],
                                                                   strict=True)]
    assert shuffle_mistake(separately, pairs).id == "keras_shuffled_separately"
    assert shuffle_mistake(pairs[::-1], pairs) is None  # shuffled together: correct
    assert shuffle_mistake([(b"x", 0)] * 6, pairs) is None  # other images: not this mistake


# -- hostile configs: a clean verdict, never a crash in the diagnosis code ----------------


def _diagnose_everything(info: dict) -> None:
    found = info["layers"]
    for names in (("kinds",), ("padding", "kernel_size", "strides", "pool_size"),
                  ("filters", "units"), ("activation",), ("rate",)):
        try:
            require(["a difference"], "check",
                    lambda names=names: layer_mistake(found, CNN, names, model="CNN",
                                                      input_shape=info.get("input_shape")))
        except AssertionError:  # Diagnosed or the plain verdict: both are clean
            pass
    try:
        require(["a difference"], "check", lambda: compile_mistake(
            info, optimizer="Adam", learning_rate=1e-4, loss=("categorical_crossentropy",),
            metrics=("accuracy",)))
    except AssertionError:
        pass


@pytest.mark.parametrize("where", ["model", "compile"])
def test_hostile_config_values_get_a_clean_verdict(where: str) -> None:
    """Every value of a valid config replaced in turn by each hostile one (a 401-digit
    integer, NaN, strings, arrays, ...), read as the suites read it (not strict): the
    diagnosis code only ever names a mistake or leaves the plain verdict."""
    base = MODEL if where == "model" else COMPILE
    crashes = []
    for path in _paths(base):
        for value in HOSTILE:
            config = _replaced(MODEL, path, value) if where == "model" else MODEL
            settings = _replaced(COMPILE, path, value) if where == "compile" else COMPILE
            try:
                info = describe(chain_spec(config, compile_config=settings, strict=False))
            except ModelRefused:
                continue
            try:
                _diagnose_everything(info)
            except Exception as exc:  # noqa: BLE001 - any other exception is the hole
                crashes.append(f"{path} = {value!r:.30}: {type(exc).__name__}: {exc}")
    assert not crashes, f"{len(crashes)} configs crashed a diagnosis: {crashes[:5]}"


@pytest.mark.parametrize("value", ["ｓａｍｅ", "五", -3, 10**30])
def test_a_refused_layer_gets_the_plain_verdict_without_a_crash(value: Any) -> None:
    """Found through the whole pipeline: text as a kernel size made `compare_geometry`
    raise ValueError (a grader error); a refused layer's settings are not diagnosed."""
    config = _cnn_config({"kernel_size": value, "strides": value, "padding": value})
    info = describe(chain_spec(config, compile_config=COMPILE, strict=False))
    found = _without_dropout(info)
    expected = [spec for spec in CNN if spec.kind != "Dropout"]
    problems = compare_geometry(found, expected)
    assert problems
    with pytest.raises(AssertionError) as raised:
        require(problems, "geometry", lambda: layer_mistake(
            found, expected, ("padding", "kernel_size", "strides"), model="CNN"))
    assert not isinstance(raised.value, Diagnosed)


@pytest.mark.parametrize("value", [float("nan"), -5, 10**6, "五", "ｓａｍｅ", [5, "x"],
                                   None, {"a": 1}, 1e308])
def test_hostile_values_in_a_description_never_crash(value: Any) -> None:
    """A description built by hand with values no validated config has (what a future
    reader might let through): still only a mistake or the plain verdict."""
    info = _info(_cnn_config())
    hostile = copy.deepcopy(info)
    for layer in hostile["layers"]:
        for key in list(layer["config"]):
            layer["config"][key] = value
        layer["output_shape"] = value
        layer["class"] = "Conv2D" if layer["class"] == "Dense" else layer["class"]
    hostile["optimizer"] = {"class": value, "learning_rate": value}
    hostile["loss"], hostile["loss_args"], hostile["metrics"] = value, {"from_logits": value}, \
        [value]
    hostile["input_shape"] = value
    _diagnose_everything(hostile)
    if isinstance(value, str):
        found = layer_mistake(hostile["layers"], CNN, ("padding",), model="CNN")
        assert found is None or all(ch.isprintable() for ch in found.sentence)


# -- Keras 2 spellings, from the student's code ------------------------------------------

SOURCE = '''\
import keras


def build():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(lr=0.1),
        loss="mse",
        metrics=["accuracy"],
    )
    return model


def build_acc():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse",
                  metrics='acc')
    return model


def save(model, path):
    path = path.replace(".weights.h5", ".ckpt")
    model.save_weights(path)


def save_given(model, path):
    model.save_weights(path)


def fine():
    return 1 / 0
'''


def _error(line: int, function: str, message: str = "anything at all",
           type_name: str = "ValueError") -> StudentError:
    frames = (TracebackLine("student.py", line, function, SOURCE.splitlines()[line - 1].strip()),)
    return StudentError(type_name, message, frames)


@pytest.mark.parametrize(("line", "function", "mistake"), [
    (6, "build", "keras2_optimizer_lr"),  # the traceback points at `model.compile(`
    (16, "build_acc", "keras2_metrics_string"),
    (23, "save", "keras2_weights_path"),
    (27, "save_given", "keras2_weights_path"),  # the path came from the caller
])
def test_keras2_spellings_are_found_in_the_code_not_the_message(line, function, mistake):
    for message in ("Argument(s) not recognized: {'lr': 0.1}", "", "something else"):
        found = hint_for(_error(line, function, message), {"student.py": SOURCE})
        assert found is not None and found.id == mistake, (message, found)


def test_a_message_that_names_a_spelling_is_not_enough() -> None:
    error = _error(31, "fine", "Argument(s) not recognized: {'lr': 0.1}; metrics='acc'",
                   "ZeroDivisionError")
    assert hint_for(error, {"student.py": SOURCE}) is None
    assert hint_for(StudentTimeout(5, "build()"), {"student.py": SOURCE}) is None


def test_a_students_own_lr_argument_is_not_the_keras2_spelling() -> None:
    source = "def step(w, g, lr=0.1):\n    return w - lr * g\n\n\ndef train(w):\n" \
             "    return step(w, None, lr=0.1)\n"
    frames = (TracebackLine("student.py", 6, "train", "return step(w, None, lr=0.1)"),)
    assert hint_for(StudentError("TypeError", "", frames), {"student.py": source}) is None


def test_without_the_source_the_frame_line_is_read() -> None:
    frames = (TracebackLine("student.py", 99, "build", "metrics='acc',"),)
    assert hint_for(StudentError("ValueError", "", frames)).id == "keras2_metrics_string"
    frames = (TracebackLine("student.py", 99, "build", "model.compile("),)
    assert hint_for(StudentError("ValueError", "", frames)) is None


@pytest.mark.parametrize("source", ["def f(:\n", "x" * 10 + "(" * 500 + ")" * 500, "",
                                    "\x00\x01", "def 函数():\n    return SGD(lr=0.1)\n"])
def test_hostile_sources_and_frames_never_crash(source: str) -> None:
    frames = (TracebackLine("student.py", 2, "f", "(((("), TracebackLine("student.py", -1,
                                                                          "f", "\x00"))
    found = hint_for(StudentError("ValueError", "", frames), {"student.py": source})
    assert found is None or found.id in KERAS2_SPELLINGS


def test_keras_hints_raises_the_diagnosis_as_data() -> None:
    with pytest.raises(Diagnosed) as raised, keras_hints():
        raise StudentError("ValueError", "whatever Keras says",
                           (TracebackLine("m.py", 3, "f", "opt = SGD(lr=0.1)"),))
    assert raised.value.mistake == "keras2_optimizer_lr"
    assert str(raised.value).startswith("Traceback") and "learning_rate=0.1" in str(raised.value)
    with pytest.raises(StudentError), keras_hints():
        raise StudentError("ValueError", "lr", (TracebackLine("m.py", 3, "f", "x = 1"),))


# -- the one-step check ----------------------------------------------------------------------

_SOFTMAXLESS = ModelSpec(
    input_shape=(784,),
    layers=({"class": "Dense", "name": "hidden", "args": {"units": 512, "activation": "relu"}},
            {"class": "Dense", "name": "out", "args": {"units": 10, "activation": "linear"}}),
    compile={"optimizer": {"class": "SGD", "args": {"learning_rate": 0.1}},
             "loss": {"name": "mean_squared_error", "shown": "mse", "args": {}},
             "metrics": ["accuracy"]})


def test_a_model_without_softmax_gets_the_softmax_diagnosis_not_the_optimizer() -> None:
    for step in ({"before": 0.09, "after": 0.1}, {"before": None, "after": None}):
        with pytest.raises(Diagnosed) as raised:
            step_failure(_SOFTMAXLESS, step, "`build_sequential_mlp()`")
        assert raised.value.mistake == "keras_missing_softmax"
        assert "optimizer" not in str(raised.value)
    step_failure(_SOFTMAXLESS, {"before": 0.1, "after": 0.09}, "x")  # it fell: passes


def _public(assignment: str):
    """The public suite's module (its `step_batch` and seeds are what the check uses)."""
    path = REPO / "autograde_tests" / assignment / "test_public.py"
    spec = importlib.util.spec_from_file_location(f"_public_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _correct_models(assignment: str, build: str) -> list[tuple[str, Any]]:
    """(name, built model) for the reference and each correct variant (our own files)."""
    file = f"{assignment}.py"
    paths = [("reference", REPO / "reference" / file)] + [
        (p.name, p / file) for p in sorted((REPO / "assignments" / assignment / "samples" /
                                            "variants").glob("*")) if (p / file).is_file()]
    models = []
    for name, path in paths:
        source = path.read_text(encoding="utf-8")
        from grader.runtime.definitions import definitions_only

        kept = definitions_only(source.encode(), file).source  # top-level runs skipped
        folder = Path(__import__("tempfile").mkdtemp())
        (folder / file).write_text(kept, encoding="utf-8")
        models.append((name, getattr(_load(folder / file, f"_{assignment}_{name}"), build)()))
    return models


def _subclassed_spec(model) -> ModelSpec:
    """AlexNet read as its blocks chained in order (as `grader.evaluator.artifact` reads it
    through the proxy), a Flatten put where `call` flattens with a reshape."""
    entries: list[dict[str, Any]] = [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 28, 28, 1], "name": "in"}}]
    for block in model.layers:
        config = block.get_config()
        inner = [entry for entry in config.get("layers", []) if entry["class_name"] != "InputLayer"]
        if inner and inner[0]["class_name"] == "Dense" and \
                entries[-1]["class_name"] not in ("Flatten", "Reshape"):
            entries.append({"class_name": "Flatten", "config": {"name": "flat"}})
        entries += inner or [{"class_name": type(block).__name__, "config": config}]
    return chain_spec({"name": "alexnet", "layers": entries},
                      compile_config=model.get_compile_config())


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "build"), [("keras_mlp", "build_sequential_mlp"),
                                                   ("keras_cnn", "build_cnn"),
                                                   ("alexnet", "build_alexnet")])
def test_every_correct_model_lowers_its_loss_on_the_check_inputs(assignment, build) -> None:
    """Issue 10: the check's inputs are ones on which a correct model's loss must fall:
    the reference and every correct variant, from three initialisations each (two for
    AlexNet; the check uses one), on the suite's own batch."""
    from grader.evaluator import keras_eval
    from grader.evaluator.spec import compile_spec

    public = _public(assignment)
    x, y = public.step_batch()
    failures = []
    for name, model in _correct_models(assignment, build):
        if assignment == "alexnet":
            spec = _subclassed_spec(model)
        else:
            try:
                compiled = model.get_compile_config()
            except TypeError:  # a loss class for an instance: read by name by the grader
                continue  # (tested elsewhere); its spec is the reference's
            spec = chain_spec(model.get_config(), model_class=type(model).__name__,
                              compile_config=compiled)
            assert compile_spec(compiled) is not None
        for seed in range(2 if assignment == "alexnet" else 3):
            step = keras_eval.loss_after_one_step(spec.as_plain(), x, y, seed=seed)
            if not (math.isfinite(step["before"]) and step["after"] < step["before"]):
                failures.append(f"{name}, seed {seed}: {step}")
    assert not failures, failures


def test_activations_only_line_layers_up_by_size_but_do_not_charge_units() -> None:
    """A missing Dense(64) is charged to the layers part, not to activations (found when
    the activations check compared kinds only and paired Dense(10, softmax) with a relu)."""
    from grader.checks.architecture import compare_activations_only

    functional = (LayerSpec("Dense", units=64, activation="relu"),
                  LayerSpec("Dense", units=64, activation="relu"),
                  LayerSpec("Dense", units=10, activation="softmax"))
    dense = [{"class": "Dense", "config": {"units": units, "activation": activation}}
             for units, activation in ((64, "relu"), (10, "softmax"))]
    assert compare_activations_only(dense, functional) == []
    wider = [{"class": "Dense", "config": {"units": 512, "activation": "relu"}}, *dense]
    assert compare_activations_only(wider, functional) == []  # units cost the units part
    dense[0]["config"]["activation"] = "sigmoid"
    assert layer_mistake(dense, functional, ("activation",)).id == "keras_activation"
