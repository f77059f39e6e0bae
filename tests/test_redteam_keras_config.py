"""Red team: a Keras config a student controls never crashes the grader's allow-list.

A model's ``get_config()`` and ``get_compile_config()`` are plain data the student
chooses (a subclass may return anything JSON can hold). `grader.evaluator.spec` must
answer every such config with a spec or a `ModelRefused` saying why: any other
exception is grader code failing on student data (reported as the grader's problem,
not a verdict on the model).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from grader.evaluator.spec import ModelRefused, chain_spec, compile_spec, describe

HUGE = 10**400  # a JSON integer of 401 digits: crosses the protocol, overflows float()

MODEL: dict[str, Any] = {"name": "seq", "layers": [
    {"module": "keras.layers", "class_name": "InputLayer",
     "config": {"batch_shape": [None, 28, 28, 1], "name": "in"}},
    {"module": "keras.layers", "class_name": "Conv2D",
     "config": {"name": "c", "filters": 8, "kernel_size": [3, 3], "strides": [1, 1],
                "padding": "same", "activation": "relu", "use_bias": True,
                "dilation_rate": [1, 1], "groups": 1, "data_format": "channels_last"}},
    {"module": "keras.layers", "class_name": "MaxPooling2D",
     "config": {"name": "p", "pool_size": [2, 2], "strides": None, "padding": "valid"}},
    {"module": "keras.layers", "class_name": "Reshape",
     "config": {"name": "r", "target_shape": [-1]}},
    {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "d", "rate": 0.5}},
    {"module": "keras.layers", "class_name": "ReLU",
     "config": {"name": "rl", "max_value": None, "negative_slope": 0.0, "threshold": 0.0}},
    {"module": "keras.layers", "class_name": "Dense",
     "config": {"name": "o", "units": 10, "activation": "softmax"}},
]}
COMPILE: dict[str, Any] = {
    "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
    "loss": {"class_name": "CategoricalCrossentropy",
             "config": {"from_logits": False, "label_smoothing": 0.0}},
    "metrics": ["accuracy"]}
HOSTILE: list[Any] = [
    HUGE, -HUGE, float("nan"), float("inf"), -0.0, 0, -1, 10**9, 2**63, 1e308, None, True,
    "", "x" * 1000, [], {}, [1] * 5, [HUGE, 1], [None], [[1, 2]], {"a": 1}, {"class_name": 5},
    {"class_name": "function", "config": 5}, np.zeros(3), np.array(5), np.zeros((100, 100)),
    np.array([1.0, np.nan]), np.zeros((2, 2), dtype=complex)]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key in value:
            yield from _paths(value[key], (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(root)
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)
    return copied


def _judge(config: Any, compile_config: Any, strict: bool) -> None:
    try:
        describe(chain_spec(config, compile_config=compile_config, strict=strict))
    except ModelRefused:
        pass


def test_the_untouched_config_is_accepted() -> None:
    spec = chain_spec(MODEL, compile_config=COMPILE)
    assert [layer["class"] for layer in spec.layers][-1] == "Dense"
    assert describe(spec)["optimizer"]["class"] == "Adam"


@pytest.mark.parametrize("where", ["model", "compile"])
def test_every_value_replaced_by_a_hostile_one_is_refused_or_accepted(where: str) -> None:
    """Each value of a valid config, replaced in turn by each hostile value (about 2,500
    configs, ~1 s): only a spec or ModelRefused may come out, never another exception."""
    base = MODEL if where == "model" else COMPILE
    crashes = []
    for path in _paths(base):
        for value in HOSTILE:
            config = _replaced(MODEL, path, value) if where == "model" else MODEL
            settings = _replaced(COMPILE, path, value) if where == "compile" else COMPILE
            for strict in (True, False):
                try:
                    _judge(config, settings, strict)
                except Exception as exc:  # noqa: BLE001 - any other exception is the hole
                    crashes.append(f"{path} = {value!r:.30} (strict={strict}): "
                                   f"{type(exc).__name__}: {exc}")
    assert not crashes, f"{len(crashes)} configs crashed the allow-list: {crashes[:5]}"


@pytest.mark.parametrize("layer, key", [(4, "rate"), (5, "threshold"), (5, "negative_slope")])
def test_a_401_digit_integer_as_a_layer_setting_is_refused_with_its_range(
        layer: int, key: str) -> None:
    """Was OverflowError from math.isfinite in the grader's process."""
    config = _replaced(MODEL, ("layers", layer, "config", key), HUGE)
    with pytest.raises(ModelRefused, match=rf"`{key}` is 1000.*expected a number from"):
        chain_spec(config, compile_config=COMPILE)


def test_a_401_digit_learning_rate_is_refused_with_its_range() -> None:
    settings = _replaced(COMPILE, ("optimizer", "config", "learning_rate"), HUGE)
    with pytest.raises(ModelRefused, match=r"`learning_rate` is 1000.*from 0 to 100"):
        compile_spec(settings)


@pytest.mark.parametrize("name", [[], {}, ["Adam"]])
def test_an_optimizer_class_name_that_is_not_text_is_refused(name: Any) -> None:
    """Was TypeError (unhashable type) from the allow-list lookup."""
    settings = _replaced(COMPILE, ("optimizer", "class_name"), name)
    with pytest.raises(ModelRefused, match="the grader trains with Adadelta, .*; found"):
        compile_spec(settings)


@pytest.mark.parametrize("inner", [HUGE, "x", [1, 2], True])
def test_an_input_layer_whose_config_is_not_a_dict_is_refused(inner: Any) -> None:
    """Was AttributeError ('int' object has no attribute 'get')."""
    config = _replaced(MODEL, ("layers", 0, "config"), inner)
    with pytest.raises(ModelRefused, match="an input layer without a config"):
        chain_spec(config, compile_config=COMPILE)


@pytest.mark.parametrize("where", [("layers", 1, "config", "dilation_rate", 0),
                                   ("layers", 4, "config", "noise_shape"),
                                   ("layers", 6, "config", "kernel_regularizer")])
def test_an_array_inside_a_layer_config_is_read_as_numbers(where: tuple[Any, ...]) -> None:
    """A get_config returning an array was ValueError (truth value of an array is ambiguous)
    from `value not in (None, False)`: it is read as the numbers it holds."""
    config = _replaced(MODEL, where, np.zeros(3))
    with pytest.raises(ModelRefused, match=r"\[0\.0, 0\.0, 0\.0\]"):
        chain_spec(config, compile_config=COMPILE)


def test_a_numpy_scalar_setting_counts_as_its_number() -> None:
    config = _replaced(MODEL, ("layers", 4, "config", "rate"), np.float32(0.25))
    assert chain_spec(config, compile_config=COMPILE).layers[3]["args"]["rate"] == 0.25


def test_a_large_array_in_a_compile_config_is_refused_with_its_shape() -> None:
    settings = _replaced(COMPILE, ("metrics",), np.zeros((100, 100)))
    with pytest.raises(ModelRefused, match=r"an array of shape \(100, 100\)"):
        compile_spec(settings)
    with pytest.raises(ModelRefused, match=r"an array of shape \(100, 100\)"):
        chain_spec(MODEL, compile_config=settings, strict=False)


class _Evaluator:
    """Stands in for the clean evaluator: the rebuilt chain predicts zeros."""

    def predict(self, plain: Any, x: np.ndarray, weights: Any = None) -> np.ndarray:
        return np.zeros((len(x), 3), np.float32)


@pytest.mark.parametrize("returned", [[["a"] * 3] * 4, [[None] * 3] * 4,
                                      np.full((4, 3), 1j)])
def test_a_subclassed_predict_returning_text_none_or_complex_is_refused(
        returned: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The equivalence check compares the student's `predict` with the rebuilt chain in the
    grader; strings or None there were TypeError from np.allclose, complex values were
    compared by magnitude. Each is now the model's refusal, with the dtype."""
    from types import SimpleNamespace

    from grader.evaluator import artifact

    monkeypatch.setattr(artifact, "evaluator_for", lambda _: SimpleNamespace(
        evaluator=_Evaluator()))
    monkeypatch.setattr(artifact, "model_weights", lambda *_: [])
    spec = chain_spec({"layers": [{"class_name": "Flatten", "config": {}},
                                  {"class_name": "Dense", "config": {"units": 3}}]},
                      input_shape=(2, 2, 1))
    model = SimpleNamespace(predict=lambda x, verbose=0: returned)
    with pytest.raises(ModelRefused, match=r"`predict` returned an array of dtype .*; "
                                           "expected real numbers"):
        artifact._check_equivalence(None, model, spec, "`AlexNet()`")


def test_a_claimed_input_of_20000x20000_pixels_is_refused_before_the_grader_draws_inputs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A subclassed model's block may claim any input shape; the equivalence check drew
    4 random inputs of that shape in the grader's process: 20000x20000 took 18 GB there
    (measured: peak RSS 18,345 MB). The shape is now refused while the config is read."""
    from types import SimpleNamespace

    from grader.evaluator import artifact

    def reached(*_: Any) -> None:
        raise AssertionError("the equivalence check ran on the claimed input shape")

    monkeypatch.setattr(artifact, "model_weights", reached)
    monkeypatch.setattr(artifact, "evaluator_for", reached)
    block_config = {"name": "blk", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 20000, 20000, 1]}},
        {"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1}},
        {"class_name": "GlobalAveragePooling2D", "config": {}},
        {"class_name": "Dense", "config": {"units": 10}}]}
    block = SimpleNamespace(type_name="Sequential", get_config=lambda: block_config,
                            layers=[])
    model = SimpleNamespace(type_name="MyNet", get_config=lambda: {"name": "mynet"},
                            layers=[block], get_compile_config=lambda: None)
    with pytest.raises(ModelRefused, match=r"input has shape \(20000, 20000, 1\) "
                                           r"\(400,000,000 values per example\)"):
        artifact.describe_model(None, model, what="`build_cnn()`")


def test_the_course_input_shapes_are_within_the_cap() -> None:
    for shape in ((784,), (28, 28, 1), (227, 227, 3), (224, 224, 3)):
        config = _replaced(MODEL, ("layers", 0, "config", "batch_shape"), [None, *shape])
        try:
            chain_spec(config, compile_config=COMPILE)
        except ModelRefused as exc:
            assert "values per example" not in str(exc), exc


def test_weights_that_do_not_fit_stop_being_read_at_the_first_layer_that_does_not_fit() -> None:
    """A model whose `layers` lists 1,000 blocks, each returning a large array from
    get_weights, was read whole into the grader's memory (each reply is capped, their
    sum was not) before any shape was compared; reading now stops at the first misfit."""
    from types import SimpleNamespace

    from grader.evaluator.artifact import model_weights

    calls = []

    def big_weights() -> list[np.ndarray]:
        calls.append(1)
        return [np.zeros((1000, 1000), np.float32)]

    spec = chain_spec({"layers": [{"class_name": "Flatten", "config": {}},
                                  {"class_name": "Dense", "config": {"units": 3}}]},
                      input_shape=(2, 2, 1))
    blocks = [SimpleNamespace(type_name="Dense", get_weights=big_weights, layers=[])
              for _ in range(1000)]
    model = SimpleNamespace(type_name="MyNet", layers=blocks)
    with pytest.raises(ModelRefused, match=r"do not fit the layers its config declares"):
        model_weights(model, spec, "`build_alexnet()`")
    assert len(calls) == 1, f"get_weights was read {len(calls)} times"


def test_weights_that_fit_are_read_in_order() -> None:
    from types import SimpleNamespace

    from grader.evaluator.artifact import model_weights

    spec = chain_spec({"layers": [{"class_name": "Flatten", "config": {}},
                                  {"class_name": "Dense", "config": {"units": 3}}]},
                      input_shape=(2, 2, 1))
    kernel, bias = np.ones((4, 3), np.float32), np.arange(3, dtype=np.float32)
    layers = [SimpleNamespace(type_name="Flatten", get_weights=lambda: [], layers=[]),
              SimpleNamespace(type_name="Dense", get_weights=lambda: [kernel, bias], layers=[])]
    read = model_weights(SimpleNamespace(type_name="MyNet", layers=layers), spec)
    assert [w.shape for w in read] == [(4, 3), (3,)] and read[1].tolist() == [0, 1, 2]
