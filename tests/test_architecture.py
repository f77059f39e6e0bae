"""grader.checks.architecture on real Keras models, described from their configs.

The grader reads a model's ``get_config()`` and ``get_compile_config()`` (plain data)
and validates them into a spec (`grader.evaluator.spec`); here the configs come from
models built in this process with the installed Keras, so these tests need no
sandbox. The sandboxed path (configs read through the proxy, subclassed models,
hostile configs) is covered by tests/test_keras_tools.py.
"""

from __future__ import annotations

import keras
import pytest
from keras import layers

from grader.checks.architecture import (
    LayerSpec,
    canonical_loss,
    compare_activations,
    compare_compile,
    compare_dropout,
    compare_geometry,
    compare_kinds,
    compare_layers,
    compare_learning_rate,
    compare_loss,
    compare_metrics,
    compare_optimizer,
    compare_params,
    compare_units,
    normalise_kind,
)
from grader.evaluator.spec import chain_spec, describe
from reference import keras_cnn


def describe_model(model) -> dict:
    """What the grader reads from a Sequential or functional model: its configs."""
    config = model.get_config()
    return describe(chain_spec(config, model_class=type(model).__name__,
                               compile_config=model.get_compile_config()))

CNN_SPEC = [
    LayerSpec("Conv2D", filters=8, kernel_size=5, padding="same", activation="relu"),
    LayerSpec("MaxPool2D", pool_size=2),
    LayerSpec("Conv2D", filters=16, kernel_size=5, padding="same", activation="relu"),
    LayerSpec("MaxPool2D", pool_size=2),
    LayerSpec("Flatten"),
    LayerSpec("Dense", units=100, activation="relu"),
    LayerSpec("Dropout", rate=0.25),
    LayerSpec("Dense", units=10, activation="softmax"),
]
CNN_PARAMS = 82_934


def cnn(*, padding2="same", act_layers=False, dropout=True, pool=layers.MaxPooling2D,
        activation1="relu"):
    """The lecture's CNN with one planted change."""
    stack = [keras.Input(shape=(28, 28, 1)),
             layers.Conv2D(8, (5, 5), padding="same", activation=activation1),
             pool(pool_size=(2, 2))]
    if act_layers:
        stack += [layers.Conv2D(16, 5, padding=padding2), layers.Activation("relu")]
    else:
        stack += [layers.Conv2D(16, (5, 5), padding=padding2, activation="relu")]
    stack += [pool(pool_size=2), layers.Flatten()]
    if act_layers:
        stack += [layers.Dense(100), layers.ReLU()]
    else:
        stack += [layers.Dense(100, activation="relu")]
    if dropout:
        stack.append(layers.Dropout(0.25))
    if act_layers:
        stack += [layers.Dense(10), layers.Softmax()]
    else:
        stack.append(layers.Dense(10, activation="softmax"))
    model = keras.Sequential(stack)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return describe_model(model)


@pytest.fixture(scope="module")
def reference_cnn():
    return describe_model(keras_cnn.build_cnn())


def test_reference_matches_its_spec(reference_cnn) -> None:
    assert compare_layers(reference_cnn["layers"], CNN_SPEC) == []
    assert compare_params(reference_cnn["params"], CNN_PARAMS) == []
    assert compare_compile(reference_cnn, "Adam", 0.001, {"categorical_crossentropy"},
                           ["accuracy"]) == []


def test_wrong_padding_is_one_readable_difference() -> None:
    found = cnn(padding2="valid")
    assert compare_geometry(found["layers"], CNN_SPEC) == [
        "layer 3: expected Conv2D(16, 5x5, padding='same'), "
        "found Conv2D(16, 5x5, padding='valid')"]
    # Only the geometry aspect fails; the other aspects still pass.
    assert compare_kinds(found["layers"], CNN_SPEC) == []
    assert compare_activations(found["layers"], CNN_SPEC) == []
    assert compare_units(found["layers"], CNN_SPEC) == []
    assert compare_params(found["params"], CNN_PARAMS) != []


def test_wrong_activation() -> None:
    found = cnn(activation1="sigmoid")
    assert compare_activations(found["layers"], CNN_SPEC) == [
        "layer 1: expected Conv2D(8, 5x5, activation='relu'), "
        "found Conv2D(8, 5x5, activation='sigmoid')"]
    assert compare_geometry(found["layers"], CNN_SPEC) == []


def test_missing_dropout_costs_only_dropout_and_kinds() -> None:
    found = cnn(dropout=False)
    assert compare_dropout(found["layers"], CNN_SPEC) == [
        "layer 7: expected Dropout(0.25), missing"]
    kinds = compare_kinds(found["layers"], CNN_SPEC)
    assert kinds[0] == ("layer 7: expected Dropout(0.25), missing "
                        "(before Dense(10, activation='softmax'))")
    # The layers after the gap still line up: no activation, unit or geometry differences.
    for check in (compare_activations, compare_units, compare_geometry):
        assert check(found["layers"], CNN_SPEC) == []
    assert compare_params(found["params"], CNN_PARAMS) == []  # Dropout has no weights


def test_maxpool2d_and_activation_layers_are_equivalent() -> None:
    found = cnn(pool=layers.MaxPool2D, act_layers=True)
    assert compare_layers(found["layers"], CNN_SPEC) == []
    assert compare_params(found["params"], CNN_PARAMS) == []
    assert normalise_kind("MaxPool2D") == normalise_kind("MaxPooling2D") == "MaxPooling2D"


def test_softmax_forgotten_and_extra_layer() -> None:
    spec = [LayerSpec("Dense", units=512, activation="relu"),
            LayerSpec("Dense", units=10, activation="softmax")]
    forgot = keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"),
                               layers.Dense(10)])
    assert compare_activations(describe_model(forgot)["layers"], spec) == [
        "layer 2: expected Dense(10, activation='softmax'), "
        "found Dense(10, activation='linear')"]
    extra = keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    kinds = compare_kinds(describe_model(extra)["layers"], spec)
    assert kinds[0].startswith("found an extra layer Dense(64, activation='relu') (layer 2")
    assert kinds[-1] == "expected layers: Dense, Dense; found: Dense, Dense, Dense"


def test_dropout_rate_with_tolerance() -> None:
    found = [{"class": "Dropout", "config": {"rate": 0.25 + 1e-9}}]
    assert compare_dropout(found, [LayerSpec("Dropout", rate=0.25)]) == []
    found = [{"class": "Dropout", "config": {"rate": 0.5}}]
    assert compare_dropout(found, [LayerSpec("Dropout", rate=0.25)]) == [
        "layer 1: expected Dropout(0.25), found Dropout(0.5)"]


def test_compile_aspects() -> None:
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss=keras.losses.MeanSquaredError(), metrics=["acc"])
    found = describe_model(model)
    assert found["loss"] == "MeanSquaredError" and found["metrics"] == ["acc"]
    assert compare_optimizer(found, "sgd") == ["optimizer: expected sgd, found Adam"]
    assert compare_learning_rate(found, 0.1) == [
        "learning rate: expected 0.1, found 0.01"]
    assert compare_loss(found, {"mse", "mean_squared_error"}) == []
    assert compare_loss(found, {"categorical_crossentropy"}) == [
        "loss: expected 'categorical_crossentropy', found 'MeanSquaredError'"]
    assert compare_metrics(found, ["accuracy"]) == []
    assert compare_compile(found, "Adam", 0.01, {"mse"}, ["accuracy"]) == []
    # A loss class for an instance: get_compile_config fails, so the grader reads the
    # arguments one by one (grader.evaluator.artifact); this is what it builds from them.
    found = describe(chain_spec(model.get_config(), compile_config={
        "optimizer": {"class_name": "SGD", "config": {}}, "metrics": [],
        "loss": {"class_name": "CategoricalCrossentropy", "config": {}, "passed_class": True}}))
    assert found["loss"] == "<class CategoricalCrossentropy>"
    assert compare_loss(found, {"categorical_crossentropy"}) == []
    assert compare_metrics(found, ["accuracy"]) == ["metrics: expected ['accuracy'], found []"]
    uncompiled = describe_model(keras.Sequential([keras.Input((4,)), layers.Dense(3)]))
    assert not uncompiled["compiled"] and uncompiled["optimizer"] is None
    assert "not compiled" in compare_compile(uncompiled, "SGD", 0.1, {"mse"}, ["accuracy"])[0]


@pytest.mark.parametrize(("name", "canonical"), [
    ("mse", "mean_squared_error"), ("MeanSquaredError", "mean_squared_error"),
    ("<class MeanSquaredError>", "mean_squared_error"),
    ("categorical_crossentropy", "categorical_crossentropy"),
    ("CategoricalCrossentropy", "categorical_crossentropy"),
])
def test_loss_names(name: str, canonical: str) -> None:
    assert canonical_loss(name) == canonical


def test_functional_and_sequential_describe_the_same_layers() -> None:
    inputs = keras.Input((784,))
    x = layers.Dense(64)(inputs)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.0)(x)  # Keras records its call's `training` flag in the config
    functional = keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    sequential = keras.Sequential([keras.Input((784,)), layers.Dense(64, activation="relu"),
                                   layers.Dropout(0.0), layers.Dense(10, activation="softmax")])
    spec = [LayerSpec("Dense", units=64, activation="relu"), LayerSpec("Dropout", rate=0.0),
            LayerSpec("Dense", units=10, activation="softmax")]
    for model in (functional, sequential):
        described = describe_model(model)
        assert compare_layers(described["layers"], spec) == []
        assert described["params"] == model.count_params() == 50_890
        assert described["layers"][-1]["output_shape"] == [None, 10]


def test_a_single_aspect_difference_names_the_layer_in_full():
    """A check of one setting still shows the layer's filters and kernel, as found."""
    found = [{"class": "Conv2D", "config": {"filters": 16, "kernel_size": [5, 5],
                                            "strides": [1, 1], "padding": "valid"}}]
    assert compare_geometry(found, [LayerSpec("Conv2D", padding="same")]) == [
        "layer 1: expected Conv2D(16, 5x5, padding='same'), "
        "found Conv2D(16, 5x5, padding='valid')"]


# -- the allow-list: what the grader refuses to rebuild, before any Keras process sees it ----


def _sequential(*entries: dict, compile_config: dict | None = None):
    from grader.evaluator.spec import chain_spec

    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, 784]}, "registered_name": None}, *entries]
    return chain_spec({"layers": layers}, compile_config=compile_config)


def _dense(**config) -> dict:
    return {"module": "keras.layers", "class_name": "Dense",
            "config": {"units": 10, "activation": "softmax", **config}, "registered_name": None}


def test_a_lambda_layer_is_refused_with_a_reason() -> None:
    from grader.evaluator.spec import ModelRefused

    planted = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
               "config": {"function": {"class_name": "__lambda__", "config": {
                   "code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}}
    with pytest.raises(ModelRefused, match="a Lambda layer holds Python code, which the grader "
                                           "never runs outside your process"):
        _sequential(planted, _dense())


@pytest.mark.parametrize(("entry", "message"), [
    ({"module": "keras_cnn", "class_name": "MyDense", "config": {}, "registered_name":
      "Custom>MyDense"}, "'MyDense' is a custom class"),
    ({"module": "keras.layers", "class_name": "Dense", "config": {}, "registered_name":
      "student>Dense"}, "'Dense' is a custom class"),
    ({"module": "keras.layers", "class_name": "LSTM", "config": {"units": 3},
      "registered_name": None}, "the grader does not rebuild 'LSTM' layers"),
    (_dense(kernel_regularizer={"class_name": "L2", "config": {"l2": 0.1}}),
     "`kernel_regularizer` is .* the grader rebuilds only None"),
    (_dense(units=-3), "`units` is -3; expected an integer from 1 to 100,000"),
    (_dense(activation={"module": "os", "class_name": "function", "config": "system"}),
     "`activation` is .*; expected one of Keras's activations"),
    (_dense(backdoor="import os"), "the setting `backdoor` .* is not one the grader rebuilds"),
    (_dense(units=100_000) | {"class_name": "Dense"}, None),
])
def test_anything_off_the_allow_list_is_refused(entry: dict, message: str | None) -> None:
    from grader.evaluator.spec import ModelRefused

    if message is None:  # a valid layer that makes the model too big
        with pytest.raises(ModelRefused, match="parameters; the grader trains models of at most"):
            _sequential(entry, _dense(units=5000), _dense(units=10))
        return
    with pytest.raises(ModelRefused, match=message):
        _sequential(entry, _dense())


@pytest.mark.parametrize(("compile_config", "message"), [
    ({"optimizer": {"class_name": "Evil", "config": {}}, "loss": "mse"},
     "optimizer: the grader trains with"),
    ({"optimizer": {"class_name": "SGD", "config": {"learning_rate": {
        "class_name": "ExponentialDecay", "config": {}}}}, "loss": "mse"},
     "a learning-rate schedule"),
    ({"optimizer": {"class_name": "SGD", "config": {}}, "loss": {
        "module": "keras_cnn", "class_name": "function", "config": "my_loss",
        "registered_name": "function"}}, "loss: the grader trains with Keras's own losses"),
])
def test_compile_settings_off_the_allow_list_are_refused(compile_config, message) -> None:
    from grader.evaluator.spec import ModelRefused

    with pytest.raises(ModelRefused, match=message):
        _sequential(_dense(), compile_config=compile_config)


def test_a_functional_model_that_is_not_a_chain_is_refused() -> None:
    from grader.evaluator.spec import ModelRefused

    inputs = keras.Input((784,))
    left = layers.Dense(8)(inputs)
    right = layers.Dense(8)(inputs)
    model = keras.Model(inputs, layers.Dense(10)(layers.Add()([left, right])))
    with pytest.raises(ModelRefused, match="single chain of layers|does not rebuild 'Add'"):
        describe_model(model)
