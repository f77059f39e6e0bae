"""A convolutional network in Keras: the lecture's CNN for 28x28 digit images.

Two 5x5 convolutions (8 and 16 filters, "same" padding, ReLU), each followed by
2x2 max pooling, then Flatten, Dense(100, relu), Dropout(0.25) and a 10-way
softmax: 82,934 parameters. Trained as in the lecture with Adam and
categorical cross-entropy, 10 epochs in batches of 128, holding out 20% of the
training images for validation.

Run it with ``python -m reference.keras_cnn`` (minutes on a laptop CPU) or a
one-epoch check with ``--quick``.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import keras
import numpy as np
from keras import layers

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)  # height, width, one grey channel

FILTERS = (8, 16)
KERNEL_SIZE = (5, 5)
POOL_SIZE = (2, 2)
HIDDEN_UNITS = 100
DROPOUT_RATE = 0.25

EPOCHS = 10
BATCH_SIZE = 128
VALIDATION_SPLIT = 0.2

SEED = 0
LECTURE_VALIDATION_SIZE = 5_000  # the lecture's 55,000 / 5,000 split of the training images
# --quick: enough data and steps to show learning in seconds.
QUICK_TRAIN_SIZE = 5_000
QUICK_TEST_SIZE = 2_000
QUICK_EPOCHS = 1
QUICK_BATCH_SIZE = 32  # at 128, one epoch on 4,000 images is ~30 steps: too few for Adam


def preprocess(images, labels):
    """Scales images and adds a channel axis; one-hot encodes labels.

    Args:
        images: uint8 array of shape (N, 28, 28), values 0..255.
        labels: integer array of shape (N,), values 0..9.

    Returns:
        A tuple (x, y):
        - x: float32 array of shape (N, 28, 28, 1), values in [0, 1].
        - y: float32 array of shape (N, 10), one-hot rows.
    """
    ### BEGIN SOLUTION
    # Conv2D expects (height, width, channels); the images have one channel.
    x = np.asarray(images).reshape(-1, *INPUT_SHAPE).astype("float32") / 255.0
    y = keras.utils.to_categorical(labels, NUM_CLASSES).astype("float32")
    return x, y
    ### END SOLUTION


def build_cnn():
    """Builds and compiles the lecture's CNN.

    Layers, for inputs of shape (28, 28, 1):
    Conv2D(8, 5x5, same, relu) -> (28, 28, 8); MaxPooling2D(2) -> (14, 14, 8);
    Conv2D(16, 5x5, same, relu) -> (14, 14, 16); MaxPooling2D(2) -> (7, 7, 16);
    Flatten -> (784,); Dense(100, relu); Dropout(0.25); Dense(10, softmax).
    82,934 parameters. Compiled with "adam", loss "categorical_crossentropy"
    and metrics ["accuracy"].

    Returns:
        A compiled `keras.Sequential` mapping (N, 28, 28, 1) float32 to
        (N, 10) class probabilities.
    """
    ### BEGIN SOLUTION
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(FILTERS[0], KERNEL_SIZE, padding="same", activation="relu"),
            layers.MaxPooling2D(pool_size=POOL_SIZE),
            layers.Conv2D(FILTERS[1], KERNEL_SIZE, padding="same", activation="relu"),
            layers.MaxPooling2D(pool_size=POOL_SIZE),
            layers.Flatten(),
            layers.Dense(HIDDEN_UNITS, activation="relu"),
            layers.Dropout(DROPOUT_RATE),  # drops a quarter of the units while training only
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
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


def run_lecture(dataset=None, *, quick=False, seed=SEED, verbose=0):
    """Trains the CNN as in the lecture and evaluates it on the test set.

    Args:
        dataset: x_train, y_train, x_test, y_test (a `load_dataset()` result or
            the grader's dataset); None loads MNIST through Keras.
        quick: train on 5,000 images (4,000 after the validation split) for one
            epoch in batches of 32 instead of the lecture's 10 epochs on all
            55,000 in batches of 128.
        seed: seeds Python, numpy and TensorFlow, so a run repeats exactly.
        verbose: passed to `fit`; 2 prints one line per epoch.

    Returns:
        A tuple (epochs, test_accuracy).
    """
    if dataset is None:
        dataset = load_dataset()
    keras.utils.set_random_seed(seed)
    x_train, y_train = preprocess(dataset.x_train, dataset.y_train)
    x_test, y_test = preprocess(dataset.x_test, dataset.y_test)
    epochs, batch_size = EPOCHS, BATCH_SIZE
    if quick:
        x_train, y_train = x_train[:QUICK_TRAIN_SIZE], y_train[:QUICK_TRAIN_SIZE]
        x_test, y_test = x_test[:QUICK_TEST_SIZE], y_test[:QUICK_TEST_SIZE]
        epochs, batch_size = QUICK_EPOCHS, QUICK_BATCH_SIZE
    model = build_cnn()
    model.fit(x_train, y_train, validation_split=VALIDATION_SPLIT, epochs=epochs,
              batch_size=batch_size, verbose=verbose)
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    return epochs, float(test_accuracy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one epoch on a few thousand images")
    parser.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default=None,
                        help="which dataset (default: MNIST if cached, else Fashion-MNIST)")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset or "mnist")
    build_cnn().summary()
    start = time.perf_counter()
    epochs, accuracy = run_lecture(dataset, quick=args.quick, verbose=2)
    seconds = time.perf_counter() - start
    print(f"{dataset.name}: {epochs} epochs, test accuracy {accuracy:.4f}, {seconds:.1f} s")


if __name__ == "__main__":
    main()
