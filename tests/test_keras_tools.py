"""The evaluator through real sandboxed runtimes, models read as artifacts, and the Keras 3 hints.

One student runtime holds the three reference solutions (as a submission would), a
module of the lecture's Keras 2 spellings, each of which Keras 3 rejects, and a module
of hostile and subclassed models. Its evaluator is the clean sandboxed process that
trains and runs the models the student's configs declare (`grader.evaluator`).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.checks.accuracy import AccuracyBudget, AccuracyRun, measure_accuracy
from grader.checks.diagnose import Diagnosed
from grader.checks.keras_hints import hint_for, keras_hints
from grader.checks.splits import private_split
from grader.evaluator.artifact import (
    describe_model,
    loss_after_one_step,
    model_weights,
    read_model,
    untrained_predictions,
)
from grader.evaluator.runtime import MODULE, evaluator_for
from grader.evaluator.spec import ModelRefused
from grader.runtime import ProtocolViolation, SandboxLimits, StudentError, StudentRuntime

REPO = Path(__file__).resolve().parents[1]
# AlexNet's weights are read a layer at a time; its largest layer's are 64.02 MB.
LIMITS = SandboxLimits(call_timeout_s=120, import_timeout_s=120, memory_mb=6144,
                       max_message_mb=80)

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


HOSTILE = textwrap.dedent('''\
    """Models that lie about themselves, and subclassed models."""
    import keras
    import numpy as np
    from keras import layers

    MARKER = "/tmp/deserialised"


    def lambda_model():
        model = keras.Sequential([keras.Input((28, 28)), layers.Lambda(lambda x: x * 2.0),
                                  layers.Flatten(), layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model


    @keras.saving.register_keras_serializable(package="student")
    class Planted(layers.Layer):
        """A custom layer whose from_config would leave a marker if anyone deserialised it."""

        @classmethod
        def from_config(cls, config):
            open(MARKER, "w").write("deserialised")
            return cls(**config)

        def call(self, x):
            return x


    def custom_layer_model():
        model = keras.Sequential([keras.Input((784,)), Planted(),
                                  layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model


    def marker_exists():
        import os

        return os.path.exists(MARKER)


    def lying_model():
        """One untrained layer that claims, in its own process, to be perfect."""
        model = keras.Sequential([keras.Input((784,)), layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-12),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        model.predict = lambda x, **kwargs: np.eye(10, dtype="float32")[np.zeros(len(x), int)]
        model.fit = lambda *args, **kwargs: None
        model.count_params = lambda: 82_934
        return model


    def loss_class_model():
        model = keras.Sequential([keras.Input((784,)), layers.Dense(10, activation="softmax")])
        model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy,
                      metrics=["accuracy"])
        return model


    class Chained(keras.Model):
        """Subclassed; its blocks in assignment order are the model."""

        def __init__(self):
            super().__init__()
            self.conv = keras.Sequential([layers.Conv2D(4, 3, activation="relu"),
                                          layers.MaxPool2D(2)])
            self.fc = keras.Sequential([layers.Dense(10, activation="softmax")])

        def call(self, x, training=None):
            x = self.conv(x, training=training)
            return self.fc(keras.ops.reshape(x, (-1, 13 * 13 * 4)), training=training)


    class Scrambled(Chained):
        """Subclassed; `call` does something its blocks, chained, do not."""

        def call(self, x, training=None):
            return 1.0 - super().call(x, training=training)


    def subclassed(kind):
        model = {"chained": Chained, "scrambled": Scrambled}[kind]()
        model(keras.ops.zeros((1, 28, 28, 1)))
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model
''')


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    workspace = tmp_path_factory.mktemp("keras-tools")
    for name in ("keras_mlp", "keras_cnn", "alexnet"):
        shutil.copyfile(REPO / "reference" / f"{name}.py", workspace / f"{name}.py")
    (workspace / "mistakes.py").write_text(MISTAKES, encoding="utf-8")
    (workspace / "hostile.py").write_text(HOSTILE, encoding="utf-8")
    with StudentRuntime(workspace, ["keras_mlp", "keras_cnn", "alexnet", "mistakes", "hostile"],
                        limits=LIMITS) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def student(runtime):
    return runtime.student


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
def test_reference_models_read_from_their_configs(student, module, build, params,
                                                  kinds) -> None:
    described = describe_model(student, getattr(getattr(student, module), build)())
    assert described["params"] == params and described["compiled"]
    assert [layer["class"] for layer in described["layers"]] == kinds
    assert sum(layer["params"] for layer in described["layers"]) == params
    assert described["layers"][-1]["output_shape"] == [None, 10]
    assert described["layers"][-1]["config"] == {"units": 10, "activation": "softmax"}
    assert described["metrics"] == ["accuracy"]


def test_compile_settings_and_the_subclassed_alexnet(student) -> None:
    described = describe_model(student, student.keras_mlp.build_sequential_mlp())
    assert described["optimizer"]["class"] == "SGD"
    assert described["optimizer"]["learning_rate"] == pytest.approx(0.1)
    assert described["loss"] == "mse"
    alexnet = describe_model(student, student.alexnet.build_alexnet())
    assert alexnet["class"] == "AlexNet" and alexnet["loss"] == "CategoricalCrossentropy"
    assert alexnet["layers"][0]["config"] == {"activation": "relu", "filters": 16,
                                             "kernel_size": [3, 3], "strides": [1, 1],
                                             "padding": "same"}
    assert alexnet["layers"][8] == {"class": "Flatten", "name": alexnet["layers"][8]["name"],
                                    "params": 0, "output_shape": [None, 4096], "config": {}}


def test_a_loss_class_for_an_instance_is_read_by_name(student) -> None:
    described = describe_model(student, student.hostile.loss_class_model())
    assert described["loss"] == "<class CategoricalCrossentropy>"
    assert described["optimizer"]["class"] == "SGD" and described["metrics"] == ["accuracy"]


def test_no_grader_tool_is_reachable_in_the_students_process(runtime) -> None:
    with pytest.raises(ProtocolViolation, match="unknown op 'tool'"):
        runtime._request("tool", {"name": "describe_model", "args": {"t": "l", "v": []},
                                  "kwargs": {"t": "d", "k": [], "v": []}}, [], "tool")
    assert not hasattr(runtime.student, "tool")


def test_the_evaluator_holds_no_student_code(student) -> None:
    evaluator = evaluator_for(student)
    assert evaluator is evaluator_for(student)  # one per submission
    assert evaluator.modules == (MODULE,)
    assert list(evaluator.workspace.iterdir()) == []
    assert evaluator.ping()["modules"] == [MODULE]


def test_a_lambda_layer_is_refused_and_nothing_is_deserialised(student) -> None:
    with pytest.raises(ModelRefused, match="a Lambda layer holds Python code"):
        read_model(student, student.hostile.lambda_model())
    with pytest.raises(ModelRefused, match="'Planted' is a custom class"):
        read_model(student, student.hostile.custom_layer_model())
    assert student.hostile.marker_exists() is False


def test_a_model_that_lies_in_its_own_process_is_judged_by_its_config(student,
                                                                      dataset) -> None:
    model = student.hostile.lying_model()
    described = describe_model(student, model)
    assert described["params"] == 7_850  # 784 * 10 + 10, whatever count_params says
    assert [layer["class"] for layer in described["layers"]] == ["Dense"]
    split = private_split(dataset.x_test, dataset.y_test, 300, key="lying")
    budget = AccuracyBudget(train_images=256, test_images=300, epochs=1, batch_size=32,
                            time_budget_s=60, seed=0)
    run = measure_accuracy(student, module="hostile", build="lying_model", split=split,
                           dataset=dataset, budget=budget)
    # Its patched predict (all class 0) would score the share of class 0, about 0.1; the
    # evaluator's untrained copy scores near chance too, and differs from the patched one.
    assert run.accuracy < 0.3
    assert np.asarray(run.confusion)[:, 0].sum() < 300


def test_a_subclassed_model_is_read_as_its_blocks_only_when_they_are_the_model(
        student) -> None:
    chained = read_model(student, student.hostile.subclassed("chained"))
    assert [layer["class"] for layer in chained.layers] == [
        "Conv2D", "MaxPooling2D", "Flatten", "Dense"]  # Flatten stands for keras.ops.reshape
    assert chained.layers[2].get("implicit") is True
    with pytest.raises(ModelRefused, match="does not give your model's predictions"):
        read_model(student, student.hostile.subclassed("scrambled"))


def test_an_unbuilt_subclassed_model_is_refused_with_a_reason(student) -> None:
    with pytest.raises(ModelRefused, match=r"has no weights yet; build it before returning it, "
                                           r"e.g. by calling it once on a batch of zeros of "
                                           r"shape \(1, 28, 28, 1\)"):
        read_model(student, student.alexnet.AlexNet(), input_shape=(28, 28, 1))


def test_weights_are_read_layer_by_layer(student) -> None:
    model = student.keras_cnn.build_cnn()
    spec = read_model(student, model)
    weights = model_weights(model, spec)
    assert [w.shape for w in weights] == [(5, 5, 1, 8), (8,), (5, 5, 8, 16), (16,),
                                          (784, 100), (100,), (100, 10), (10,)]
    assert all(w.dtype == np.float32 for w in weights)


def test_fit_and_predict_small_run(student, dataset) -> None:
    split = private_split(dataset.x_test, dataset.y_test, 256, key="small run")
    run = measure_accuracy(student, module="keras_cnn", build="build_cnn", split=split,
                           dataset=dataset,
                           budget=AccuracyBudget(train_images=512, test_images=256, epochs=1,
                                                 batch_size=32, time_budget_s=60, seed=0))
    assert run.epochs_done == 1 and run.batches_done == 16 and not run.stopped_by_budget
    assert run.budget_message == ""
    assert len(run.history["loss"]) == 1 and run.history["accuracy"][0] is not None
    assert run.confusion.shape == (10, 10) and run.confusion.sum() == 256
    assert np.array_equal(run.confusion.sum(axis=1), np.bincount(split.labels, minlength=10))
    assert run.accuracy == pytest.approx(np.trace(run.confusion) / 256)
    assert run.accuracy > 0.2  # 16 Adam steps already beat chance (0.1)


def test_time_budget_stops_training_with_a_report(student, dataset) -> None:
    spec = read_model(student, student.keras_mlp.build_sequential_mlp())
    x = (dataset.x_train[:256].reshape(-1, 784) / 255.0).astype("float32")
    y = np.eye(10, dtype="float32")[dataset.y_train[:256]]
    result = evaluator_for(student).evaluator.fit_and_predict(
        spec.as_plain(), x, y, x[:10], epochs=5, batch_size=32, seed=0, time_budget_s=0.0)
    assert result["stopped_by_budget"] and result["batches_done"] == 1
    assert result["epochs_done"] == 0
    assert result["predictions"].shape == (10, 10) and result["predictions"].dtype == np.float32
    budget = AccuracyBudget(train_images=256, test_images=10, epochs=5, batch_size=32,
                            time_budget_s=0.0)
    run = AccuracyRun(accuracy=0.0, epochs_done=0, stopped_by_budget=True, seconds=0.1,
                      history=result["history"], confusion=np.zeros((10, 10), int),
                      budget=budget, batches_done=1)
    assert run.budget_message == ("training stopped at its time budget of 0 s after 0 of 5 "
                                  "epochs (and 1 batches of the next); the accuracy is that of "
                                  "the model at that point")


def test_one_step_and_untrained_predictions_in_the_evaluator(student, dataset) -> None:
    spec = read_model(student, student.keras_mlp.build_functional_mlp())
    x = (dataset.x_train[:64].reshape(-1, 784) / 255.0).astype("float32")
    y = np.eye(10, dtype="float32")[dataset.y_train[:64]]
    losses = loss_after_one_step(student, spec, x, y)
    assert losses["after"] < losses["before"]
    first = untrained_predictions(student, spec, x[:4])
    assert first.shape == (4, 10) and np.allclose(first.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(first, untrained_predictions(student, spec, x[:4]))  # seeded


@pytest.mark.parametrize(("call", "mistake", "hint"), [
    (lambda s: s.mistakes.sgd_lr(), "keras2_optimizer_lr",
     "`keras.optimizers.SGD(learning_rate=0.1)`; `lr=` was removed"),
    (lambda s: s.mistakes.metrics_acc(), "keras2_metrics_string", "`metrics=[\"accuracy\"]`"),
    (lambda s: s.mistakes.save_ckpt("w.ckpt"), "keras2_weights_path",
     "a path ending in `.weights.h5`"),
    (lambda s: s.mistakes.loss_class_save("m.keras"), "keras2_loss_class",
     "`loss=keras.losses.CategoricalCrossentropy()` (with parentheses)"),
    (lambda s: s.mistakes.optimizer_lr(), "keras2_lr_attribute", "`optimizer.learning_rate`"),
    (lambda s: s.mistakes.fit_nb_epoch(), "keras2_nb_epoch", "`epochs=`"),
])
def test_keras3_mistakes_fail_with_a_hint(student, call, mistake, hint) -> None:
    """The spelling is found in the student's code (source and traceback lines), as data:
    the diagnosis's id travels with the failure; Keras's message is shown, not read."""
    with pytest.raises(Diagnosed) as info, keras_hints(student):
        call(student)
    assert info.value.mistake == mistake
    message = str(info.value)
    assert "\nHint: " in message and hint in message
    assert message.splitlines()[-2].startswith(("ValueError", "TypeError", "AttributeError"))


def test_other_failures_pass_through_unchanged(student) -> None:
    with pytest.raises(StudentError) as info, keras_hints(student):
        student.keras_cnn.preprocess(np.zeros((2, 5, 5), np.uint8), np.zeros(2, np.int64))
    assert hint_for(info.value, {}) is None


def test_tf_nn_activations_are_named_like_their_strings():
    """`activation=tf.nn.softmax` serialises as a plain function `softmax_v2`."""
    from grader.evaluator.spec import activation_name

    assert activation_name({"class_name": "function", "config": "softmax_v2"}) == "softmax"
    assert activation_name({"class_name": "function", "config": "relu"}) == "relu"
    assert activation_name("softmax_v2") == "softmax"
