"""An AlexNet-style network for 28x28 digit images, as a subclassed `keras.Model`.

Five 3x3 convolutions (16, 32, 64, 128, 256 filters, "same" padding, ReLU) with
2x2 max pooling after the first, the second and the fifth, then three Dense
layers (4096, 2048, 1024, ReLU, each followed by Dropout 0.4) and a 10-way
softmax: 27,672,714 parameters. The data go through a `tf.data` pipeline; the
model trains with Adam (learning rate 1e-4) for 2 epochs in batches of 128,
and its weights are saved to a ``.weights.h5`` file.

TensorFlow places the work on a GPU when one is visible and on the CPU
otherwise; `uses_gpu()` says which. On a laptop CPU one epoch over all 55,000
images takes minutes: try ``python -m reference.alexnet --quick`` first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import tensorflow as tf
from keras import layers

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)  # height, width, one grey channel

KERNEL_SIZE = (3, 3)
POOL_SIZE = (2, 2)
POOL_STRIDES = 2
DROPOUT_RATE = 0.4

LEARNING_RATE = 1e-4  # the rate the lecture compiles with
EPOCHS = 2
BATCH_SIZE = 128
VALIDATION_FREQ = 2  # the lecture validates on the test set after the second epoch only
SHUFFLE_BUFFER = 10_000

SEED = 0
LECTURE_VALIDATION_SIZE = 5_000  # the lecture's 55,000 / 5,000 split of the training images
# --quick: a small subset, so one epoch takes seconds on a CPU.
QUICK_TRAIN_SIZE = 1_024
QUICK_TEST_SIZE = 1_000
QUICK_EPOCHS = 1
QUICK_BATCH_SIZE = 32  # at 128, 1,024 images are only 8 Adam steps


def uses_gpu():
    """True when TensorFlow sees a GPU, so training and inference run there."""
    return bool(tf.config.list_physical_devices("GPU"))


def preprocess(x, y):
    """Scales an image, adds its channel axis and one-hot encodes its label.

    Written with TensorFlow ops so that it runs inside `tf.data.Dataset.map`,
    on one example or on a batch.

    Args:
        x: uint8 tensor of shape (28, 28) (or a batch, (B, 28, 28)), values 0..255.
        y: integer scalar tensor (or shape (B,)), values 0..9.

    Returns:
        A tuple (x, y):
        - x: float32 tensor of shape (28, 28, 1) (or (B, 28, 28, 1)), values in [0, 1].
        - y: float32 tensor of shape (10,) (or (B, 10)), one-hot.
    """
    ### BEGIN SOLUTION
    x = tf.cast(x, dtype=tf.float32) / 255.0
    x = tf.expand_dims(x, axis=-1)  # Conv2D expects a channel axis
    y = tf.cast(y, dtype=tf.int32)  # tf.one_hot takes integer indices
    y = tf.one_hot(y, depth=NUM_CLASSES)
    return x, y
    ### END SOLUTION


def make_datasets(x_train, y_train, x_test, y_test, batch_size=BATCH_SIZE):
    """Builds the lecture's `tf.data` pipelines.

    The training set is shuffled (buffer 10,000, fixed seed, so runs repeat),
    then preprocessed and batched; the test set is preprocessed and batched,
    in order.

    Args:
        x_train: uint8 array of shape (N, 28, 28).
        y_train: integer array of shape (N,).
        x_test: uint8 array of shape (M, 28, 28).
        y_test: integer array of shape (M,).
        batch_size: examples per batch.

    Returns:
        A tuple (train_db, test_db) of `tf.data.Dataset`s yielding batches
        (x, y) of shapes (batch, 28, 28, 1) float32 and (batch, 10) float32.
    """
    ### BEGIN SOLUTION
    train_db = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_db = train_db.shuffle(SHUFFLE_BUFFER, seed=SEED).map(preprocess).batch(batch_size)
    test_db = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    test_db = test_db.map(preprocess).batch(batch_size)
    return train_db, test_db
    ### END SOLUTION


class AlexNet(keras.Model):
    """The lecture's AlexNet: a convolutional block `conv`, then a dense block `fc`.

    Attributes:
        conv: `keras.Sequential` of Conv2D(16) MaxPool Conv2D(32) MaxPool
            Conv2D(64) Conv2D(128) Conv2D(256) MaxPool; all convolutions 3x3,
            stride 1, "same", ReLU; all pools 2x2, stride 2, "same". Maps
            (B, 28, 28, 1) to (B, 4, 4, 256).
        fc: `keras.Sequential` of Dense(4096) Dropout(0.4) Dense(2048)
            Dropout(0.4) Dense(1024) Dropout(0.4), all ReLU, then
            Dense(10, softmax). Maps (B, 4096) to (B, 10).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        ### BEGIN SOLUTION
        self.conv = keras.Sequential(
            [
                layers.Conv2D(16, KERNEL_SIZE, padding="same", strides=1, activation="relu"),
                layers.MaxPool2D(pool_size=POOL_SIZE, strides=POOL_STRIDES, padding="same"),
                layers.Conv2D(32, KERNEL_SIZE, padding="same", strides=1, activation="relu"),
                layers.MaxPool2D(pool_size=POOL_SIZE, strides=POOL_STRIDES, padding="same"),
                layers.Conv2D(64, KERNEL_SIZE, padding="same", strides=1, activation="relu"),
                layers.Conv2D(128, KERNEL_SIZE, padding="same", strides=1, activation="relu"),
                layers.Conv2D(256, KERNEL_SIZE, padding="same", strides=1, activation="relu"),
                # "same" pooling rounds up: 7x7 -> 4x4, so 4 * 4 * 256 = 4096 features
                layers.MaxPool2D(pool_size=POOL_SIZE, strides=POOL_STRIDES, padding="same"),
            ]
        )
        self.flatten = layers.Flatten()
        self.fc = keras.Sequential(
            [
                layers.Dense(4096, activation="relu"),
                layers.Dropout(DROPOUT_RATE),  # AlexNet's defence against overfitting
                layers.Dense(2048, activation="relu"),
                layers.Dropout(DROPOUT_RATE),
                layers.Dense(1024, activation="relu"),
                layers.Dropout(DROPOUT_RATE),
                layers.Dense(NUM_CLASSES, activation="softmax"),
            ]
        )
        ### END SOLUTION

    def call(self, inputs, training=None):
        """Runs the network.

        Args:
            inputs: float32 tensor of shape (B, 28, 28, 1).
            training: True while fitting, so that Dropout drops units.

        Returns:
            float32 tensor of shape (B, 10): class probabilities.
        """
        ### BEGIN SOLUTION
        x = self.conv(inputs, training=training)  # (B, 4, 4, 256)
        x = self.flatten(x)  # (B, 4096)
        return self.fc(x, training=training)
        ### END SOLUTION


def build_alexnet():
    """Creates, builds and compiles an AlexNet.

    Built for inputs of shape (B, 28, 28, 1), so its 27,672,714 parameters
    exist before any training or loading of weights. Compiled with Adam (learning rate 1e-4), a
    `keras.losses.CategoricalCrossentropy()` instance and metrics ["accuracy"].

    Returns:
        A built, compiled `AlexNet`.
    """
    ### BEGIN SOLUTION
    model = AlexNet()
    # Calling the model once creates its weights; in Keras 3, model.build(input_shape)
    # does not build a subclassed model's layers.
    model(keras.ops.zeros((1, *INPUT_SHAPE)))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=keras.losses.CategoricalCrossentropy(),  # an instance, not the class
        metrics=["accuracy"],  # Keras 3 wants a list, not 'acc'
    )
    return model
    ### END SOLUTION


def save_weights(model, path):
    """Saves a model's weights, creating the folder if needed.

    Args:
        model: a built `AlexNet`.
        path: file path ending in ".weights.h5" (Keras 3 refuses
            TensorFlow-checkpoint paths such as "weights.ckpt").

    Returns:
        The `Path` written.
    """
    ### BEGIN SOLUTION
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # the HDF5 writer does not create folders
    model.save_weights(path)
    return path
    ### END SOLUTION


def load_weights(path):
    """Builds a fresh compiled `AlexNet` and loads saved weights into it.

    Args:
        path: a file written by `save_weights`.

    Returns:
        A built, compiled `AlexNet` whose predictions equal those of the saved model.
    """
    ### BEGIN SOLUTION
    model = build_alexnet()
    model.load_weights(path)
    return model
    ### END SOLUTION


def load_dataset(name="mnist"):
    """MNIST or Fashion-MNIST through Keras's own loader, as in the lecture.

    Keras downloads the data once to ``~/.keras/datasets``. The last
    `LECTURE_VALIDATION_SIZE` training images are the validation split.

    Args:
        name: "mnist" or "fashion_mnist".

    Returns:
        A namespace with ``name`` and ``x_train, y_train, x_validation, y_validation,
        x_test, y_test``: uint8 images of shape (N, 28, 28) and integer labels of shape (N,).
    """
    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    cut = len(x_train) - LECTURE_VALIDATION_SIZE
    return SimpleNamespace(name=name, x_train=x_train[:cut], y_train=y_train[:cut],
                           x_validation=x_train[cut:], y_validation=y_train[cut:],
                           x_test=x_test, y_test=y_test)


def run_lecture(dataset=None, *, quick=False, seed=SEED, verbose=0, weights_path=None):
    """Trains AlexNet as in the lecture and evaluates it on the test set.

    Args:
        dataset: x_train, y_train, x_test, y_test (a `load_dataset()` result or
            the grader's dataset); None loads MNIST through Keras.
        quick: train on 1,024 images for one epoch in batches of 32 and test on
            1,000, instead of the lecture's 2 epochs on all 55,000 in batches of 128.
        seed: seeds Python, numpy and TensorFlow, so a run repeats exactly.
        verbose: passed to `fit`; 2 prints one line per epoch.
        weights_path: where to save the trained weights (".weights.h5"); None
            saves nothing.

    Returns:
        A tuple (epochs, test_accuracy).
    """
    if dataset is None:
        dataset = load_dataset()
    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = (dataset.x_train, dataset.y_train,
                                        dataset.x_test, dataset.y_test)
    epochs, batch_size = EPOCHS, BATCH_SIZE
    if quick:
        x_train, y_train = x_train[:QUICK_TRAIN_SIZE], y_train[:QUICK_TRAIN_SIZE]
        x_test, y_test = x_test[:QUICK_TEST_SIZE], y_test[:QUICK_TEST_SIZE]
        epochs, batch_size = QUICK_EPOCHS, QUICK_BATCH_SIZE
    train_db, test_db = make_datasets(x_train, y_train, x_test, y_test, batch_size=batch_size)
    model = build_alexnet()
    model.fit(train_db, epochs=epochs, validation_data=test_db, validation_freq=VALIDATION_FREQ,
              verbose=verbose)
    if weights_path is not None:
        save_weights(model, weights_path)
    _, test_accuracy = model.evaluate(test_db, verbose=0)
    return epochs, float(test_accuracy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one epoch on 1,024 images")
    parser.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default=None,
                        help="which dataset (default: MNIST if cached, else Fashion-MNIST)")
    parser.add_argument("--weights", default=None,
                        help="save the trained weights here (a path ending in .weights.h5)")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset or "mnist")
    print(f"device: {'GPU' if uses_gpu() else 'CPU'}")
    build_alexnet().summary()
    start = time.perf_counter()
    epochs, accuracy = run_lecture(dataset, quick=args.quick, verbose=2,
                                   weights_path=args.weights)
    seconds = time.perf_counter() - start
    print(f"{dataset.name}: {epochs} epochs, test accuracy {accuracy:.4f}, {seconds:.1f} s")


if __name__ == "__main__":
    main()
