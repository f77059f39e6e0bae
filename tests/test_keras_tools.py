"""The runtime-side Keras tools through a real sandboxed runtime, and the Keras 3 hints.

One runtime holds the three reference solutions (as a submission would) and a module of
the lecture's Keras 2 spellings, each of which Keras 3 rejects.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.checks.accuracy import AccuracyBudget, measure_accuracy
from grader.checks.keras_hints import hint_for, keras_hints
from grader.runtime import SandboxLimits, StudentError, StudentRuntime

REPO = Path(__file__).resolve().parents[1]
LIMITS = SandboxLimits(call_timeout_s=120, import_timeout_s=120, memory_mb=6144)

MISTAKES = textwrap.dedent('''\
    """The lecture's Keras 2 spellings."""
    import keras
    import numpy as np
    from keras import layers


    def small():
        return keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])


    def sgd_lr():
        return keras.optimizers.SGD(lr=0.1)


    def metrics_acc():
        model = small()
        model.compile(optimizer="sgd", loss="mse", metrics="acc")
        return model


    def save_ckpt(path):
        small().save_weights(path)


    def loss_class_save(path):
        model = small()
        model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy,
                      metrics=["accuracy"])
        model.save(path)


    def optimizer_lr():
        model = small()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
        return float(model.optimizer.lr)


    def fit_nb_epoch():
        model = small()
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.zeros((4, 4)), np.zeros((4, 3)), nb_epoch=1, verbose=0)
''')


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory):
    workspace = tmp_path_factory.mktemp("keras-tools")
    for name in ("keras_mlp", "keras_cnn", "alexnet"):
        shutil.copyfile(REPO / "reference" / f"{name}.py", workspace / f"{name}.py")
    (workspace / "mistakes.py").write_text(MISTAKES, encoding="utf-8")
    with StudentRuntime(workspace, ["keras_mlp", "keras_cnn", "alexnet", "mistakes"],
                        limits=LIMITS) as runtime:
        yield runtime.student


@pytest.fixture(scope="module")
def dataset():
    return data.load()


@pytest.mark.parametrize(("module", "build", "params", "kinds"), [
    ("keras_mlp", "build_sequential_mlp", 407_050, ["Dense", "Dense"]),
    ("keras_mlp", "build_functional_mlp", 55_050, ["Dense", "Dense", "Dense"]),
    ("keras_cnn", "build_cnn", 82_934, ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                        "Flatten", "Dense", "Dropout", "Dense"]),
    ("alexnet", "build_alexnet", 27_672_714, ["Conv2D", "MaxPooling2D", "Conv2D",
                                              "MaxPooling2D", "Conv2D", "Conv2D", "Conv2D",
                                              "MaxPooling2D", "Flatten", "Dense", "Dropout",
                                              "Dense", "Dropout", "Dense", "Dropout", "Dense"]),
])
def test_describe_reference_models(student, module, build, params, kinds) -> None:
    model = getattr(getattr(student, module), build)()
    described = student.tool("describe_model", model)
    assert described["params"] == params and described["compiled"]
    assert [layer["class"] for layer in described["layers"]] == kinds
    assert sum(layer["params"] for layer in described["layers"]) == params
    assert described["layers"][-1]["output_shape"] == [None, 10]
    assert described["layers"][-1]["config"] == {"units": 10, "activation": "softmax"}
    assert described["metrics"] == ["accuracy"]


def test_describe_compile_settings_and_unbuilt_subclass(student) -> None:
    described = student.tool("describe_model", student.keras_mlp.build_sequential_mlp())
    assert described["optimizer"]["class"] == "SGD"
    assert described["optimizer"]["learning_rate"] == pytest.approx(0.1)
    assert described["loss"] == "mse"
    alexnet = student.tool("describe_model", student.alexnet.build_alexnet())
    assert alexnet["loss"] == "CategoricalCrossentropy"
    assert alexnet["layers"][0]["config"] == {"activation": "relu", "filters": 16,
                                             "kernel_size": [3, 3], "strides": [1, 1],
                                             "padding": "same"}
    bare = student.tool("describe_model", student.alexnet.AlexNet(), input_shape=(28, 28, 1))
    assert bare["params"] == 27_672_714 and not bare["compiled"] and bare["loss"] is None
    assert bare["layers"][8] == {"class": "Flatten", "name": bare["layers"][8]["name"],
                                 "params": 0, "output_shape": [None, 4096], "config": {}}


def test_fit_and_predict_small_run(student, dataset) -> None:
    run = measure_accuracy(student, module="keras_cnn", build="build_cnn",
                           preprocess="preprocess", dataset=dataset,
                           budget=AccuracyBudget(train_images=512, test_images=256, epochs=1,
                                                 batch_size=32, time_budget_s=60, seed=0))
    assert run.epochs_done == 1 and run.batches_done == 16 and not run.stopped_by_budget
    assert run.budget_message == ""
    assert len(run.history["loss"]) == 1 and run.history["accuracy"][0] is not None
    assert run.confusion.shape == (10, 10) and run.confusion.sum() == 256
    assert run.accuracy == pytest.approx(np.trace(run.confusion) / 256)
    assert run.accuracy > 0.2  # 16 Adam steps already beat chance (0.1)


def test_time_budget_stops_training_with_a_report(student, dataset) -> None:
    x = (dataset.x_train[:256].reshape(-1, 784) / 255.0).astype("float32")
    y = np.eye(10, dtype="float32")[dataset.y_train[:256]]
    model = student.keras_mlp.build_sequential_mlp()
    result = student.tool("fit_and_predict", model, x, y, x[:10], epochs=5, batch_size=32,
                          seed=0, time_budget_s=0.0)
    assert result["stopped_by_budget"] and result["batches_done"] == 1
    assert result["epochs_done"] == 0
    assert result["predictions"].shape == (10, 10) and result["predictions"].dtype == np.float32
    budget = AccuracyBudget(train_images=256, test_images=10, epochs=5, batch_size=32,
                            time_budget_s=0.0)
    from grader.checks.accuracy import AccuracyRun

    run = AccuracyRun(accuracy=0.0, epochs_done=0, stopped_by_budget=True, seconds=0.1,
                      history=result["history"], confusion=np.zeros((10, 10), int),
                      budget=budget, batches_done=1)
    assert run.budget_message == ("training stopped at its time budget of 0 s after 0 of 5 "
                                  "epochs (and 1 batches of the next); the accuracy is that of "
                                  "the model at that point")


def test_one_step_lowers_the_loss(student, dataset) -> None:
    x = (dataset.x_train[:64].reshape(-1, 784) / 255.0).astype("float32")
    y = np.eye(10, dtype="float32")[dataset.y_train[:64]]
    model = student.keras_mlp.build_functional_mlp()
    losses = student.tool("loss_after_one_step", model, x, y)
    assert losses["after"] < losses["before"]


@pytest.mark.parametrize(("call", "hint"), [
    (lambda s: s.mistakes.sgd_lr(), "`keras.optimizers.SGD(learning_rate=0.1)`; `lr=` was removed"),
    (lambda s: s.mistakes.metrics_acc(), "`metrics=[\"accuracy\"]`, not `metrics='acc'`"),
    (lambda s: s.mistakes.save_ckpt("w.ckpt"), "a path ending in `.weights.h5`"),
    (lambda s: s.mistakes.loss_class_save("m.keras"),
     "`loss=keras.losses.CategoricalCrossentropy()` (with parentheses)"),
    (lambda s: s.mistakes.optimizer_lr(), "`optimizer.learning_rate`"),
    (lambda s: s.mistakes.fit_nb_epoch(), "`epochs=`"),
])
def test_keras3_mistakes_fail_with_a_hint(student, call, hint) -> None:
    with pytest.raises(AssertionError) as info, keras_hints():
        call(student)
    message = str(info.value)
    assert "\nHint: " in message and hint in message
    assert message.splitlines()[-2].startswith(("ValueError", "TypeError", "AttributeError"))


def test_other_failures_pass_through_unchanged(student) -> None:
    with pytest.raises(StudentError), keras_hints():
        student.keras_cnn.preprocess(np.zeros((2, 5, 5), np.uint8), np.zeros(2, np.int64))
    assert hint_for("ValueError: something else") is None


def test_unknown_tool_is_refused(student) -> None:
    from grader.runtime import ProtocolViolation

    with pytest.raises(ProtocolViolation, match="no grader tool named 'train_forever'"):
        student.tool("train_forever")


def test_tf_nn_activations_are_named_like_their_strings():
    """`activation=tf.nn.softmax` serialises as a plain function `softmax_v2`."""
    from grader.runtime.keras_tools import _name

    assert _name({"class_name": "function", "config": "softmax_v2"}) == "softmax"
    assert _name({"class_name": "function", "config": "relu"}) == "relu"

    def softmax_v2(x):  # what tf.nn.softmax's __name__ is
        return x

    assert _name(softmax_v2) == "softmax"
