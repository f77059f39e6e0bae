"""Tests of the Keras reference solutions: reference/keras_mlp.py, keras_cnn.py, alexnet.py.

Architecture and compile settings are checked against the lecture; the slow
tests train each reference briefly on real data and check that it learns.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from grader import data
from reference import alexnet, keras_cnn, keras_mlp

CHANCE = 1 / 10
# Short runs (a few thousand images, one epoch) must beat chance by a wide
# margin. Measured on fashion_mnist, seeds 0-2: Sequential MLP 0.69-0.72,
# CNN 0.76, functional MLP ~0.77.
QUICK_ACCURACY = 0.5
# AlexNet with the lecture's Adam(1e-4) sees only 32 steps of 32 images in its
# quick run: measured 0.39-0.45 on fashion_mnist (seeds 0-2), 4x chance.
ALEXNET_QUICK_ACCURACY = 0.3
PROBABILITY_SUM_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def dataset():
    return data.load()


@pytest.fixture(scope="module")
def untrained_alexnet():
    keras.utils.set_random_seed(0)
    return alexnet.build_alexnet()


def fake_images(n, seed=0):
    """uint8 images (n, 28, 28) that include both 0 and 255, and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def layer_specs(model):
    """(class name, settings) of each layer, the settings that define the architecture."""
    keys = ("units", "activation", "filters", "kernel_size", "strides", "padding",
            "pool_size", "rate")
    specs = []
    for layer in model.layers:
        config = layer.get_config()
        settings = {key: config[key] for key in keys if key in config}
        for key in ("kernel_size", "strides", "pool_size"):
            if key in settings:
                settings[key] = tuple(settings[key])
        specs.append((type(layer).__name__, settings))
    return specs


def assert_one_hot(y, labels):
    assert y.dtype == np.float32
    assert y.shape == (len(labels), 10)
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(y.argmax(axis=1), labels)
    assert set(np.unique(y)) <= {0.0, 1.0}


def assert_probabilities(probabilities, n):
    probabilities = np.asarray(probabilities)
    assert probabilities.shape == (n, 10)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=PROBABILITY_SUM_TOLERANCE)


def compile_settings(model):
    config = model.get_compile_config()
    optimizer = config["optimizer"]
    return {
        "optimizer": optimizer if isinstance(optimizer, str) else optimizer["class_name"],
        "learning_rate": (None if isinstance(optimizer, str)
                          else optimizer["config"]["learning_rate"]),
        "loss": config["loss"] if isinstance(config["loss"], str)
        else config["loss"]["class_name"],
        "metrics": config["metrics"],
    }


# --- Keras MLPs ------------------------------------------------------------------------------

def test_mlp_preprocess_flattens_scales_and_one_hot_encodes():
    images, labels = fake_images(12)
    x, y = keras_mlp.preprocess(images, labels)
    assert x.dtype == np.float32
    assert x.shape == (12, 784)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[3], images[3].reshape(784) / 255.0, rtol=1e-6)
    assert_one_hot(y, labels)


def test_sequential_mlp_architecture():
    model = keras_mlp.build_sequential_mlp()
    assert isinstance(model, keras.Sequential)
    assert model.count_params() == 407_050
    assert tuple(model.inputs[0].shape) == (None, 784)
    assert layer_specs(model) == [
        ("Dense", {"units": 512, "activation": "relu"}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]


def test_sequential_mlp_compile_settings():
    settings = compile_settings(keras_mlp.build_sequential_mlp())
    assert settings["optimizer"] == "SGD"
    assert settings["learning_rate"] == pytest.approx(0.1)
    assert settings["loss"] == "mse"
    assert settings["metrics"] == ["accuracy"]


def test_functional_mlp_architecture():
    model = keras_mlp.build_functional_mlp()
    assert isinstance(model, keras.Model)
    assert not isinstance(model, keras.Sequential)  # the lecture's functional API
    assert model.count_params() == 55_050
    assert tuple(model.inputs[0].shape) == (None, 784)
    assert layer_specs(model) == [
        ("InputLayer", {}),
        ("Dense", {"units": 64, "activation": "relu"}),
        ("Dense", {"units": 64, "activation": "relu"}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]


def test_functional_mlp_compile_settings():
    settings = compile_settings(keras_mlp.build_functional_mlp())
    assert settings["optimizer"] == "RMSprop"
    assert settings["loss"] == "categorical_crossentropy"
    assert settings["metrics"] == ["accuracy"]


@pytest.mark.parametrize("build", [keras_mlp.build_sequential_mlp, keras_mlp.build_functional_mlp])
def test_untrained_mlp_outputs_probabilities(build):
    x, _ = keras_mlp.preprocess(*fake_images(7))
    assert_probabilities(build().predict(x, verbose=0), 7)


# --- Keras CNN -------------------------------------------------------------------------------

def test_cnn_preprocess_adds_channel_scales_and_one_hot_encodes():
    images, labels = fake_images(12)
    x, y = keras_cnn.preprocess(images, labels)
    assert x.dtype == np.float32
    assert x.shape == (12, 28, 28, 1)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[5, :, :, 0], images[5] / 255.0, rtol=1e-6)
    assert_one_hot(y, labels)


def test_cnn_architecture():
    model = keras_cnn.build_cnn()
    assert model.count_params() == 82_934
    assert tuple(model.inputs[0].shape) == (None, 28, 28, 1)
    conv = {"kernel_size": (5, 5), "strides": (1, 1), "padding": "same", "activation": "relu"}
    pool = {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    assert layer_specs(model) == [
        ("Conv2D", {"filters": 8, **conv}),
        ("MaxPooling2D", pool),
        ("Conv2D", {"filters": 16, **conv}),
        ("MaxPooling2D", pool),
        ("Flatten", {}),
        ("Dense", {"units": 100, "activation": "relu"}),
        ("Dropout", {"rate": 0.25}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]


def test_cnn_compile_settings():
    settings = compile_settings(keras_cnn.build_cnn())
    assert settings["optimizer"] == "Adam"
    assert settings["loss"] == "categorical_crossentropy"
    assert settings["metrics"] == ["accuracy"]


def test_untrained_cnn_outputs_probabilities():
    x, _ = keras_cnn.preprocess(*fake_images(5))
    assert_probabilities(keras_cnn.build_cnn().predict(x, verbose=0), 5)


# --- AlexNet ---------------------------------------------------------------------------------

def test_alexnet_preprocess_one_example_in_tf_data_map():
    images, labels = fake_images(3)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).map(alexnet.preprocess)
    assert ds.element_spec[0].shape == (28, 28, 1)
    assert ds.element_spec[0].dtype == tf.float32
    assert ds.element_spec[1].shape == (10,)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    x, y = np.stack(xs), np.stack(ys)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    assert_one_hot(y, labels)


def test_alexnet_preprocess_a_batch():
    images, labels = fake_images(4)
    x, y = alexnet.preprocess(tf.constant(images), tf.constant(labels))
    assert x.shape == (4, 28, 28, 1) and x.dtype == tf.float32
    assert_one_hot(y.numpy(), labels)


def test_alexnet_make_datasets_batches():
    x_train, y_train = fake_images(300, seed=1)
    x_test, y_test = fake_images(130, seed=2)
    train_db, test_db = alexnet.make_datasets(x_train, y_train, x_test, y_test, batch_size=128)
    train_shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in train_db]
    assert train_shapes == [((128, 28, 28, 1), (128, 10))] * 2 + [((44, 28, 28, 1), (44, 10))]
    test_batches = list(test_db)
    assert [x.shape[0] for x, _ in test_batches] == [128, 2]
    assert all(x.dtype == tf.float32 and y.dtype == tf.float32 for x, y in test_batches)
    # The test set keeps its order; the training set is shuffled, the same way every time.
    test_labels = np.concatenate([y.numpy().argmax(axis=1) for _, y in test_batches])
    np.testing.assert_array_equal(test_labels, y_test)

    def train_labels():
        train_db, _ = alexnet.make_datasets(x_train, y_train, x_test, y_test, batch_size=128)
        return np.concatenate([y.numpy().argmax(axis=1) for _, y in train_db])

    first = train_labels()
    assert sorted(first) == sorted(y_train)
    assert not np.array_equal(first, y_train)
    np.testing.assert_array_equal(first, train_labels())


def test_alexnet_architecture(untrained_alexnet):
    model = untrained_alexnet
    assert isinstance(model, alexnet.AlexNet)
    assert model.count_params() == 27_672_714
    conv = {"kernel_size": (3, 3), "strides": (1, 1), "padding": "same", "activation": "relu"}
    pool = {"pool_size": (2, 2), "strides": (2, 2), "padding": "same"}
    assert layer_specs(model.conv) == [
        ("Conv2D", {"filters": 16, **conv}),
        ("MaxPooling2D", pool),
        ("Conv2D", {"filters": 32, **conv}),
        ("MaxPooling2D", pool),
        ("Conv2D", {"filters": 64, **conv}),
        ("Conv2D", {"filters": 128, **conv}),
        ("Conv2D", {"filters": 256, **conv}),
        ("MaxPooling2D", pool),
    ]
    assert layer_specs(model.fc) == [
        ("Dense", {"units": 4096, "activation": "relu"}),
        ("Dropout", {"rate": 0.4}),
        ("Dense", {"units": 2048, "activation": "relu"}),
        ("Dropout", {"rate": 0.4}),
        ("Dense", {"units": 1024, "activation": "relu"}),
        ("Dropout", {"rate": 0.4}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]
    assert tuple(model.conv(tf.zeros((2, 28, 28, 1))).shape) == (2, 4, 4, 256)


def test_alexnet_compile_settings(untrained_alexnet):
    settings = compile_settings(untrained_alexnet)
    assert settings["optimizer"] == "Adam"
    assert settings["learning_rate"] == pytest.approx(1e-4)
    assert settings["loss"] == "CategoricalCrossentropy"
    assert settings["metrics"] == ["accuracy"]


def test_untrained_alexnet_outputs_probabilities(untrained_alexnet):
    x, _ = alexnet.preprocess(*fake_images(6))
    assert_probabilities(untrained_alexnet.predict(x, verbose=0), 6)


def test_alexnet_inference_ignores_dropout(untrained_alexnet):
    x, _ = alexnet.preprocess(*fake_images(4))
    first = untrained_alexnet(x, training=False).numpy()
    np.testing.assert_array_equal(first, untrained_alexnet(x, training=False).numpy())
    assert not np.array_equal(first, untrained_alexnet(x, training=True).numpy())


# Keras's own HDF5 writer trips numpy 2's __array__ deprecation; nothing of ours.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_alexnet_saved_weights_reload_to_the_same_predictions(untrained_alexnet, tmp_path):
    # A folder that does not exist yet, as in the lecture's './checkpoint/'.
    path = tmp_path / "checkpoint" / "alexnet.weights.h5"
    assert alexnet.save_weights(untrained_alexnet, path) == path
    assert path.is_file()
    keras.utils.set_random_seed(1)  # the fresh model starts from other weights
    reloaded = alexnet.load_weights(path)
    assert isinstance(reloaded, alexnet.AlexNet)
    x, _ = alexnet.preprocess(*fake_images(8))
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0),
                                  untrained_alexnet.predict(x, verbose=0))
    assert compile_settings(reloaded) == compile_settings(untrained_alexnet)


def test_alexnet_refuses_a_tf_checkpoint_path(untrained_alexnet, tmp_path):
    # The lecture's './checkpoint/weights.ckpt' is a TF 2 checkpoint; Keras 3 refuses it.
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        alexnet.save_weights(untrained_alexnet, tmp_path / "weights.ckpt")


def test_alexnet_reports_the_device():
    assert alexnet.uses_gpu() == bool(tf.config.list_physical_devices("GPU"))


# --- Short runs on real data -----------------------------------------------------------------

@pytest.mark.slow
def test_sequential_mlp_learns(dataset):
    epochs, accuracy = keras_mlp.run_lecture(dataset, quick=True)
    assert epochs == keras_mlp.QUICK_EPOCHS
    assert accuracy > QUICK_ACCURACY, f"test accuracy {accuracy:.3f} after a quick run"


@pytest.mark.slow
def test_functional_mlp_learns(dataset):
    keras.utils.set_random_seed(0)
    x, y = keras_mlp.preprocess(dataset.x_train[:5_000], dataset.y_train[:5_000])
    x_test, y_test = keras_mlp.preprocess(dataset.x_test[:2_000], dataset.y_test[:2_000])
    model = keras_mlp.build_functional_mlp()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > QUICK_ACCURACY, f"test accuracy {accuracy:.3f} after one epoch"


@pytest.mark.slow
def test_cnn_learns(dataset):
    epochs, accuracy = keras_cnn.run_lecture(dataset, quick=True)
    assert epochs == keras_cnn.QUICK_EPOCHS
    assert accuracy > QUICK_ACCURACY, f"test accuracy {accuracy:.3f} after a quick run"


@pytest.mark.slow
# fit(shuffle=True) is Keras's default; the tf.data pipeline already shuffles.
@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")
def test_alexnet_learns(dataset):
    epochs, accuracy = alexnet.run_lecture(dataset, quick=True)
    assert epochs == alexnet.QUICK_EPOCHS
    assert accuracy > ALEXNET_QUICK_ACCURACY, f"test accuracy {accuracy:.3f} after a quick run"


@pytest.mark.slow
def test_a_seeded_run_repeats_exactly(dataset):
    # The grader seeds every run, so the same submission gets the same grade twice.
    assert keras_cnn.run_lecture(dataset, quick=True) == keras_cnn.run_lecture(dataset, quick=True)
