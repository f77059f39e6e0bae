"""A hostile mlp_numpy submission: the public test labels copied in, in the dataset's order.

The layers are the lecture's, but `train` does no training: its model answers `forward`
with the copied labels whenever it is given as many images as the test split or the
first part of it that a grader might use. Predictions made by the student's own code
would score near 100%; weights evaluated by the grader on a private split score chance.
The test writes the labels in place of __TEST_LABELS__ (the digits of the test split).
"""

import numpy as np

INPUT_DIMS = 28 * 28
NUM_CLASSES = 10
COPIED_LABELS = np.array([int(c) for c in "__TEST_LABELS__"])


class FullConnectionLayer:
    def __init__(self):
        self.mem = {}

    def forward(self, X, W):
        self.mem["X"], self.mem["W"] = X, W
        return X @ W

    def backward(self, grad_H):
        return grad_H @ self.mem["W"].T, self.mem["X"].T @ grad_H


class Relu:
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        self.mem["x"] = x
        return np.maximum(x, 0)

    def backward(self, grad_y):
        return grad_y * (self.mem["x"] > 0)


class Softmax:
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.mem["s"] = e / e.sum(axis=1, keepdims=True)
        return self.mem["s"]

    def backward(self, grad_y):
        s = self.mem["s"]
        return s * (grad_y - np.sum(grad_y * s, axis=1, keepdims=True))


class CrossEntropy:
    def __init__(self):
        self.mem = {}

    def forward(self, p, y):
        self.mem["p"] = p
        return float(np.mean(np.sum(-y * np.log(p + 1e-12), axis=1)))

    def backward(self, y):
        return -y / (self.mem["p"] + 1e-12) / len(y)


class FullConnectionModel:
    def __init__(self, latent_dims, rng=None):
        rng = np.random.default_rng(rng)
        self.W1 = rng.normal(size=(INPUT_DIMS + 1, latent_dims)) / np.sqrt((INPUT_DIMS + 1) / 2)
        self.W2 = rng.normal(size=(latent_dims, NUM_CLASSES)) / np.sqrt(latent_dims / 2)
        self.layers = (FullConnectionLayer(), Relu(), FullConnectionLayer(), Softmax(),
                       CrossEntropy())

    def forward(self, X, labels):
        n = len(X)
        X = np.concatenate([X, np.ones((n, 1))], axis=1)
        fc1, relu, fc2, softmax, cross_en = self.layers
        self.h1 = fc1.forward(X, self.W1)
        self.h1_relu = relu.forward(self.h1)
        self.h2 = fc2.forward(self.h1_relu, self.W2)
        self.h2_soft = softmax.forward(self.h2)
        if n >= 1000 and n <= len(COPIED_LABELS):  # the test split, in the dataset's order
            self.h2_soft = np.eye(NUM_CLASSES)[COPIED_LABELS[:n]]
        self.loss = cross_en.forward(self.h2_soft, labels)

    def backward(self, labels):
        fc1, relu, fc2, softmax, cross_en = self.layers
        grad = softmax.backward(cross_en.backward(labels))
        grad, self.W2_grad = fc2.backward(grad)
        _, self.W1_grad = fc1.backward(relu.backward(grad))


def computeAccuracy(prob, labels):
    return float(np.mean(np.argmax(prob, axis=1) == np.argmax(labels, axis=1)))


def preprocess(images, labels):
    x = np.asarray(images).reshape(len(images), INPUT_DIMS).astype(np.float32) / 255.0
    return x, np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels)]


def train(x_train, y_train, x_validation, y_validation, *, latent_dims=(100, 200, 300),
          epochs=20, batch_size=100, learning_rate=0.1, seed=0, verbose=True):
    return FullConnectionModel(latent_dims[0], rng=seed)  # no training: the labels do it


def test(model, x, y):
    model.forward(x, y)
    return computeAccuracy(model.h2_soft, y)
