"""Fully connected networks in Keras: the lecture's Sequential and functional MLPs.

The Sequential MLP (Dense 512 relu, Dense 10 softmax) is trained as in the
lecture: SGD with learning rate 0.1, mean squared error on one-hot labels,
50 epochs in batches of 512. The functional MLP (Input 784, Dense 64, 64, 10)
is the lecture's example of `keras.Model(inputs, outputs)`.

Run the lecture's training with ``python -m reference.keras_mlp`` (50 epochs:
minutes on a laptop CPU) or a one-epoch check with ``--quick``.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import keras
import numpy as np
from keras import layers

NUM_CLASSES = 10
INPUT_DIM = 28 * 28  # images are flattened into vectors of 784 pixels

# The Sequential MLP, as in the lecture.
HIDDEN_UNITS = 512
LEARNING_RATE = 0.1
EPOCHS = 50
BATCH_SIZE = 512

# The functional MLP.
FUNCTIONAL_HIDDEN_UNITS = 64

SEED = 0
LECTURE_VALIDATION_SIZE = 5_000  # the lecture's 55,000 / 5,000 split of the training images
# --quick: enough data and steps to show learning in seconds.
QUICK_TRAIN_SIZE = 10_000
QUICK_TEST_SIZE = 2_000
QUICK_EPOCHS = 1
QUICK_BATCH_SIZE = 16  # at 512, one epoch is ~20 SGD steps: too few for MSE + SGD to learn


def preprocess(images, labels):
    """Flattens and scales images; one-hot encodes labels.

    Args:
        images: uint8 array of shape (N, 28, 28), values 0..255.
        labels: integer array of shape (N,), values 0..9.

    Returns:
        A tuple (x, y):
        - x: float32 array of shape (N, 784), values in [0, 1].
        - y: float32 array of shape (N, 10), one-hot rows.
    """
    ### BEGIN SOLUTION
    x = np.asarray(images).reshape(-1, INPUT_DIM).astype("float32") / 255.0
    y = keras.utils.to_categorical(labels, NUM_CLASSES).astype("float32")
    return x, y
    ### END SOLUTION


def build_sequential_mlp():
    """Builds and compiles the lecture's Sequential MLP.

    Dense(512, relu) -> Dense(10, softmax) on inputs of shape (784,): 407,050
    parameters. Compiled with SGD (learning rate 0.1), loss "mse" and metrics
    ["accuracy"].

    Returns:
        A compiled `keras.Sequential` mapping (N, 784) float32 to (N, 10)
        class probabilities.
    """
    ### BEGIN SOLUTION
    model = keras.Sequential(
        [
            keras.Input(shape=(INPUT_DIM,)),  # Keras 3 spelling of input_shape=(28*28,)
            layers.Dense(HIDDEN_UNITS, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),  # Keras 3 rejects lr=
        loss="mse",
        metrics=["accuracy"],
    )
    return model
    ### END SOLUTION


def build_functional_mlp():
    """Builds and compiles the lecture's functional MLP.

    Input(784) -> Dense(64, relu) -> Dense(64, relu) -> Dense(10, softmax),
    written with the functional API: 55,050 parameters. Compiled with
    "rmsprop", loss "categorical_crossentropy" and metrics ["accuracy"].

    Returns:
        A compiled `keras.Model` mapping (N, 784) float32 to (N, 10) class
        probabilities.
    """
    ### BEGIN SOLUTION
    inputs = keras.Input(shape=(INPUT_DIM,))
    x = layers.Dense(FUNCTIONAL_HIDDEN_UNITS, activation="relu")(inputs)
    x = layers.Dense(FUNCTIONAL_HIDDEN_UNITS, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
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
    """Trains the Sequential MLP as in the lecture and evaluates it on the test set.

    Args:
        dataset: x_train, y_train, x_test, y_test (a `load_dataset()` result or
            the grader's dataset); None loads MNIST through Keras.
        quick: train on 10,000 images for one epoch in batches of 16 instead
            of the lecture's 50 epochs on all 55,000 in batches of 512.
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
    model = build_sequential_mlp()
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    return epochs, float(test_accuracy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one epoch on a few thousand images")
    parser.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default=None,
                        help="which dataset (default: MNIST if cached, else Fashion-MNIST)")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset or "mnist")
    build_sequential_mlp().summary()
    start = time.perf_counter()
    epochs, accuracy = run_lecture(dataset, quick=args.quick, verbose=2)
    seconds = time.perf_counter() - start
    print(f"{dataset.name}: {epochs} epochs, test accuracy {accuracy:.4f}, {seconds:.1f} s")


if __name__ == "__main__":
    main()
