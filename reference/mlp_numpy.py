"""The lecture's hand-coded fully connected network in numpy.

Input (784 pixels + a bias column of ones) -> FullConnectionLayer -> Relu ->
FullConnectionLayer -> Softmax -> CrossEntropy, trained with mini-batch SGD.
Every layer keeps what its backward pass needs in ``self.mem``. `train`
searches the hidden size (latent_dims 100, 200, 300) on the validation split,
as the lecture does.

Run the lecture's setting with ``python -m reference.mlp_numpy`` (minutes on a
laptop CPU) or a few-second check with ``--quick``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

INPUT_DIMS = 28 * 28  # images are flattened into vectors of 784 pixels
NUM_CLASSES = 10
EPSILON = 1e-12  # keeps log(0) and 1/0 out of the cross-entropy

# The lecture's search and our training defaults (SGD on the batch-mean loss).
LATENT_DIMS = (100, 200, 300)
EPOCHS = 20
BATCH_SIZE = 100
LEARNING_RATE = 0.1
SEED = 0

# --quick: enough data and steps to show learning in a few seconds.
QUICK_TRAIN_SIZE = 3_000
QUICK_VALIDATION_SIZE = 1_000
QUICK_LATENT_DIMS = (100,)
QUICK_EPOCHS = 2
LECTURE_VALIDATION_SIZE = 5_000  # the lecture's 55,000 / 5,000 split of the training images
MNIST_NPZ = "~/.keras/datasets/mnist.npz"  # where Keras keeps MNIST


class FullConnectionLayer:
    """A fully connected layer without bias: H = X @ W (the bias is a column of X)."""

    def __init__(self):
        self.mem = {}  # what backward needs from forward

    def forward(self, X, W):
        """Computes H = X W.

        Args:
            X: inputs of shape (N, D).
            W: weights of shape (D, M).

        Returns:
            H: outputs of shape (N, M).
        """
        ### BEGIN SOLUTION
        self.mem["X"] = X
        self.mem["W"] = W
        H = np.matmul(X, W)
        return H
        ### END SOLUTION

    def backward(self, grad_H):
        """Back-propagates the loss gradient through H = X W.

        Args:
            grad_H: gradient of the loss w.r.t. H, shape (N, M).

        Returns:
            (grad_X, grad_W): gradients w.r.t. X, shape (N, D), and W, shape (D, M).
        """
        ### BEGIN SOLUTION
        X = self.mem["X"]
        W = self.mem["W"]
        grad_X = np.matmul(grad_H, W.T)  # dH_nm/dX_nd = W_dm
        grad_W = np.matmul(X.T, grad_H)  # dH_nm/dW_dm = X_nd, summed over the batch
        return grad_X, grad_W
        ### END SOLUTION


class Relu:
    """Elementwise max(0, x)."""

    def __init__(self):
        self.mem = {}

    def forward(self, x):
        """Args: x of any shape. Returns: max(0, x), same shape."""
        ### BEGIN SOLUTION
        self.mem["x"] = x
        return np.where(x > 0, x, np.zeros_like(x))
        ### END SOLUTION

    def backward(self, grad_y):
        """Args: grad_y, the loss gradient w.r.t. the output. Returns: grad_x, same shape."""
        ### BEGIN SOLUTION
        x = self.mem["x"]
        return grad_y * (x > 0)  # slope 1 where x > 0, else 0 (we pick 0 at x = 0)
        ### END SOLUTION


class Softmax:
    """Row-wise softmax: s_ij = exp(x_ij) / sum_k exp(x_ik)."""

    def __init__(self):
        self.mem = {}

    def forward(self, x):
        """Args: x, logits of shape (N, C). Returns: probabilities, shape (N, C), rows sum to 1."""
        ### BEGIN SOLUTION
        shifted = x - np.max(x, axis=1, keepdims=True)  # same softmax, no overflow in exp
        exp = np.exp(shifted)
        s = exp / np.sum(exp, axis=1, keepdims=True)
        self.mem["s"] = s
        return s
        ### END SOLUTION

    def backward(self, grad_y):
        """Multiplies each row's gradient by that row's softmax Jacobian.

        The Jacobian of row n is J_ij = ds_i/dx_j = s_i (delta_ij - s_j).

        Args:
            grad_y: gradient of the loss w.r.t. the probabilities, shape (N, C).

        Returns:
            grad_x: gradient of the loss w.r.t. the logits, shape (N, C).
        """
        ### BEGIN SOLUTION
        s = self.mem["s"]
        diag = np.einsum("ni,ij->nij", s, np.eye(s.shape[1]))  # (N, C, C), s_i on the diagonal
        jacobian = diag - np.einsum("ni,nj->nij", s, s)  # (N, C, C)
        return np.einsum("nij,ni->nj", jacobian, grad_y)  # grad_x_j = sum_i grad_y_i ds_i/dx_j
        ### END SOLUTION


class CrossEntropy:
    """Batch-mean cross-entropy between probabilities p and one-hot labels y."""

    def __init__(self):
        self.mem = {}

    def forward(self, p, y):
        """Computes mean_n( -sum_c y_nc log(p_nc + EPSILON) ).

        Args:
            p: probabilities of shape (N, C).
            y: one-hot labels of shape (N, C).

        Returns:
            The loss, a float.
        """
        ### BEGIN SOLUTION
        self.mem["p"] = p
        log_p = np.log(p + EPSILON)
        return np.mean(np.sum(-y * log_p, axis=1))
        ### END SOLUTION

    def backward(self, y):
        """Gradient of the loss of the last forward w.r.t. p.

        Args:
            y: one-hot labels of shape (N, C), as given to forward.

        Returns:
            grad_p: shape (N, C), -y / (p + EPSILON) / N (the mean's 1/N included).
        """
        ### BEGIN SOLUTION
        p = self.mem["p"]
        return -y / (p + EPSILON) / p.shape[0]
        ### END SOLUTION


class FullConnectionModel:
    """The lecture's network: 785 -> latent_dims (ReLU) -> 10 (softmax), cross-entropy loss.

    Attributes:
        W1: weights of shape (785, latent_dims); the last row multiplies the bias column.
        W2: weights of shape (latent_dims, 10).
        After forward: h1, h1_relu, h2, h2_soft (N, 10) and loss (a float).
        After backward: loss_grad, h2_soft_grad, h2_grad, W2_grad, h1_relu_grad, h1_grad, W1_grad.
    """

    def __init__(self, latent_dims, rng=None):
        """He-initialises the weights: normal(0, 1) / sqrt(fan_in / 2).

        Args:
            latent_dims: the number of hidden units.
            rng: a `np.random.Generator` or a seed for one; None draws fresh randomness.
        """
        ### BEGIN SOLUTION
        rng = np.random.default_rng(rng)
        fan_in = INPUT_DIMS + 1  # the pixels and the bias column
        self.W1 = rng.normal(loc=0, scale=1, size=[fan_in, latent_dims]) / np.sqrt(fan_in / 2)
        self.W2 = rng.normal(loc=0, scale=1, size=[latent_dims, NUM_CLASSES]) / np.sqrt(
            latent_dims / 2)
        self.mul_h1 = FullConnectionLayer()  # hidden layer
        self.relu = Relu()
        self.mul_h2 = FullConnectionLayer()  # output layer
        self.softmax = Softmax()
        self.cross_en = CrossEntropy()
        ### END SOLUTION

    def forward(self, X, labels):
        """Runs the network and the loss; sets h1, h1_relu, h2, h2_soft and loss.

        Args:
            X: images of shape (N, 784).
            labels: one-hot labels of shape (N, 10).
        """
        ### BEGIN SOLUTION
        bias = np.ones(shape=[X.shape[0], 1])
        X = np.concatenate([X, bias], axis=1)  # (N, 785): W1's last row acts as the bias
        self.h1 = self.mul_h1.forward(X, self.W1)
        self.h1_relu = self.relu.forward(self.h1)
        self.h2 = self.mul_h2.forward(self.h1_relu, self.W2)
        self.h2_soft = self.softmax.forward(self.h2)
        self.loss = self.cross_en.forward(self.h2_soft, labels)
        ### END SOLUTION

    def backward(self, labels):
        """Back-propagates the loss of the last forward; sets W1_grad and W2_grad.

        Args:
            labels: one-hot labels of shape (N, 10), as given to forward.
        """
        ### BEGIN SOLUTION
        self.loss_grad = self.cross_en.backward(labels)
        self.h2_soft_grad = self.softmax.backward(self.loss_grad)
        self.h2_grad, self.W2_grad = self.mul_h2.backward(self.h2_soft_grad)
        self.h1_relu_grad = self.relu.backward(self.h2_grad)
        self.h1_grad, self.W1_grad = self.mul_h1.backward(self.h1_relu_grad)
        ### END SOLUTION


def computeAccuracy(prob, labels):
    """Fraction of rows whose most probable class is the labelled one.

    Args:
        prob: class probabilities (or scores) of shape (N, 10).
        labels: one-hot labels of shape (N, 10).

    Returns:
        The accuracy, a float in [0, 1].
    """
    ### BEGIN SOLUTION
    predictions = np.argmax(prob, axis=1)
    truth = np.argmax(labels, axis=1)
    return float(np.mean(predictions == truth))
    ### END SOLUTION


def preprocess(images, labels):
    """Flattens and scales images; one-hot encodes labels.

    Args:
        images: uint8 array of shape (N, 28, 28), values 0..255.
        labels: integer array of shape (N,), values 0..9.

    Returns:
        (x, y): x, float32 of shape (N, 784) with values in [0, 1];
        y, float32 one-hot labels of shape (N, 10).
    """
    ### BEGIN SOLUTION
    x = np.asarray(images).reshape(len(images), INPUT_DIMS).astype(np.float32) / 255.0
    y = np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels)]
    return x, y
    ### END SOLUTION


def train_one_step(model, x, y, learning_rate):
    """One SGD step on one batch.

    Args:
        model: a FullConnectionModel.
        x: images of shape (B, 784).
        y: one-hot labels of shape (B, 10).
        learning_rate: the step size.

    Returns:
        (loss, accuracy) of the batch before the step.
    """
    ### BEGIN SOLUTION
    model.forward(x, y)
    model.backward(y)
    model.W1 -= learning_rate * model.W1_grad
    model.W2 -= learning_rate * model.W2_grad
    return model.loss, computeAccuracy(model.h2_soft, y)
    ### END SOLUTION


def train_model(model, x, y, *, epochs, batch_size, learning_rate, rng, verbose=True,
                description="Training"):
    """Trains a model for some epochs of shuffled mini-batches.

    Args:
        model: a FullConnectionModel.
        x: images of shape (N, 784).
        y: one-hot labels of shape (N, 10).
        epochs: passes over the data.
        batch_size: images per SGD step (the last batch may be smaller).
        learning_rate: the step size.
        rng: a `np.random.Generator` for the shuffling.
        verbose: show a tqdm progress bar with the last epoch's mean loss and accuracy.
        description: the progress bar's prefix.

    Returns:
        The model, trained in place.
    """
    ### BEGIN SOLUTION
    bar = tqdm(range(epochs), disable=not verbose)
    for epoch in bar:
        order = rng.permutation(len(x))  # a new order every epoch
        losses, accuracies = [], []
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            loss, accuracy = train_one_step(model, x[batch], y[batch], learning_rate)
            losses.append(loss)
            accuracies.append(accuracy)
        bar.set_description(f"{description}, epoch={epoch + 1}, loss={np.mean(losses):.8f}, "
                            f"accuracy={np.mean(accuracies):.6f}")
    return model
    ### END SOLUTION


def train(x_train, y_train, x_validation, y_validation, *, latent_dims=LATENT_DIMS,
          epochs=EPOCHS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, seed=SEED,
          verbose=True):
    """Searches the hidden size on the validation split and returns the best model.

    Each candidate is initialised and shuffled from ``np.random.default_rng(seed)``,
    so a candidate's run does not depend on the others. The lecture trains the
    best size again for 50 epochs; here the best model of the search is kept.

    Args:
        x_train: images of shape (N, 784), values in [0, 1].
        y_train: one-hot labels of shape (N, 10).
        x_validation: images of shape (V, 784).
        y_validation: one-hot labels of shape (V, 10).
        latent_dims: the hidden sizes to try.
        epochs: epochs per candidate.
        batch_size: images per SGD step.
        learning_rate: the SGD step size.
        seed: seeds the initialisation and the shuffling.
        verbose: show progress bars and the validation results.

    Returns:
        The FullConnectionModel with the best validation accuracy.
    """
    ### BEGIN SOLUTION
    if verbose:
        tqdm.write("Start searching the best parameter...")
    best_model, best_accuracy = None, -1.0
    for dims in latent_dims:
        rng = np.random.default_rng(seed)
        model = FullConnectionModel(dims, rng=rng)
        train_model(model, x_train, y_train, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, rng=rng, verbose=verbose,
                    description=f"Parameter latent_dims={dims}")
        accuracy = test(model, x_validation, y_validation)
        if verbose:
            tqdm.write(f"Parameter latent_dims={dims}, validation_loss={model.loss:.6f}, "
                       f"validation_accuracy={accuracy:.4f}.")
        if accuracy > best_accuracy:
            best_model, best_accuracy = model, accuracy
    if verbose:
        tqdm.write(f"The best parameter is {best_model.W2.shape[0]}.")
    return best_model
    ### END SOLUTION


def test(model, x, y):
    """Accuracy of a model.

    Args:
        model: a FullConnectionModel.
        x: images of shape (N, 784).
        y: one-hot labels of shape (N, 10).

    Returns:
        The accuracy, a float in [0, 1].
    """
    ### BEGIN SOLUTION
    model.forward(x, y)
    return computeAccuracy(model.h2_soft, y)
    ### END SOLUTION


def load_dataset(path=MNIST_NPZ):
    """MNIST from the ``.npz`` file Keras keeps (numpy only; no TensorFlow needed).

    Args:
        path: an ``.npz`` with ``x_train, y_train, x_test, y_test``; the default is where
            ``keras.datasets.mnist.load_data()`` stores it. Download it once from
            https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz

    Returns:
        A namespace with ``name`` and ``x_train, y_train, x_validation, y_validation,
        x_test, y_test``: uint8 images of shape (N, 28, 28) and integer labels of shape (N,);
        the last `LECTURE_VALIDATION_SIZE` training images are the validation split.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: download "
                         "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz "
                         "to that path, or pass --data PATH")
    with np.load(path, allow_pickle=False) as archive:
        x_train, y_train = archive["x_train"], archive["y_train"]
        x_test, y_test = archive["x_test"], archive["y_test"]
    cut = len(x_train) - LECTURE_VALIDATION_SIZE
    return SimpleNamespace(name=path.stem, x_train=x_train[:cut], y_train=y_train[:cut],
                           x_validation=x_train[cut:], y_validation=y_train[cut:],
                           x_test=x_test, y_test=y_test)


def run_lecture(dataset=None, *, quick=False, verbose=False):
    """Trains as in the lecture and evaluates on the test split.

    Args:
        dataset: x_train, y_train, x_validation, y_validation, x_test, y_test (a
            `load_dataset()` result or the grader's dataset); None loads `MNIST_NPZ`.
        quick: 3,000 training images, one hidden size, 2 epochs (seconds).
        verbose: show progress bars.

    Returns:
        (epochs per candidate, test accuracy).
    """
    dataset = load_dataset() if dataset is None else dataset
    x_train, y_train = preprocess(dataset.x_train, dataset.y_train)
    x_validation, y_validation = preprocess(dataset.x_validation, dataset.y_validation)
    x_test, y_test = preprocess(dataset.x_test, dataset.y_test)
    latent_dims, epochs = LATENT_DIMS, EPOCHS
    if quick:
        x_train, y_train = x_train[:QUICK_TRAIN_SIZE], y_train[:QUICK_TRAIN_SIZE]
        x_validation = x_validation[:QUICK_VALIDATION_SIZE]
        y_validation = y_validation[:QUICK_VALIDATION_SIZE]
        latent_dims, epochs = QUICK_LATENT_DIMS, QUICK_EPOCHS
    model = train(x_train, y_train, x_validation, y_validation, latent_dims=latent_dims,
                  epochs=epochs, verbose=verbose)
    return epochs, test(model, x_test, y_test)


def main(argv=None):
    """Trains with the lecture's search and prints the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3,000 images, one hidden size, 2 epochs")
    parser.add_argument("--data", default=MNIST_NPZ,
                        help=f"MNIST as an .npz (default: {MNIST_NPZ}, where Keras keeps it)")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.data)
    started = time.perf_counter()
    epochs, accuracy = run_lecture(dataset, quick=args.quick, verbose=True)
    seconds = time.perf_counter() - started
    searched = len(QUICK_LATENT_DIMS if args.quick else LATENT_DIMS)
    print(f"Evaluate the best model on {dataset.name}, test accuracy={accuracy:.6f} "
          f"({searched} sizes x {epochs} epochs in {seconds:.1f} s, "
          f"{seconds / (searched * epochs):.2f} s per epoch on average).")


if __name__ == "__main__":
    main()
