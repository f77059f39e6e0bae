"""A correct mlp_numpy in a loop-heavy style: explicit loops, a mask product, a per-row
Jacobian, float32 initial weights from an unseeded Generator, and a tuple cache."""

import numpy as np
from tqdm import tqdm

EPSILON = 1e-12


class FullConnectionLayer:
    def __init__(self):
        self.mem = {}

    def forward(self, X, W):
        self.mem["cache"] = (X, W)
        H = np.zeros((X.shape[0], W.shape[1]), dtype=np.result_type(X, W))
        for n in range(X.shape[0]):
            for m in range(W.shape[1]):
                H[n, m] = np.dot(X[n], W[:, m])
        return H

    def backward(self, grad_H):
        X, W = self.mem["cache"]
        return grad_H.dot(W.transpose()), X.transpose().dot(grad_H)


class Relu:
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        self.mem["mask"] = (x > 0).astype(x.dtype)
        return x * self.mem["mask"]

    def backward(self, grad_y):
        return grad_y * self.mem["mask"]


class Softmax:
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        out = np.empty_like(x, dtype=float)
        for i, row in enumerate(x):
            e = np.exp(row - row.max())
            out[i] = e / e.sum()
        self.mem["out"] = out
        return out

    def backward(self, grad_y):
        s = self.mem["out"]
        grad_x = np.empty_like(s)
        for i in range(s.shape[0]):
            jacobian = np.diag(s[i]) - np.outer(s[i], s[i])
            grad_x[i] = jacobian.T @ grad_y[i]
        return grad_x


class CrossEntropy:
    def __init__(self):
        self.mem = {}

    def forward(self, p, y):
        self.mem["p"] = p
        return -np.sum(y * np.log(p + EPSILON)) / p.shape[0]

    def backward(self, y):
        p = self.mem["p"]
        return -y / (p + EPSILON) / p.shape[0]


class FullConnectionModel:
    def __init__(self, latent_dims):
        rng = np.random.default_rng()
        self.W1 = (rng.standard_normal((785, latent_dims)) * np.sqrt(2 / 785)).astype(np.float32)
        self.W2 = (rng.standard_normal((latent_dims, 10)) * np.sqrt(2 / latent_dims)).astype(
            np.float32)
        self.mul_h1 = FullConnectionLayer()
        self.relu = Relu()
        self.mul_h2 = FullConnectionLayer()
        self.softmax = Softmax()
        self.cross_en = CrossEntropy()

    def forward(self, X, labels):
        X = np.c_[X, np.ones(X.shape[0])]
        self.h1 = X @ self.W1
        self.mul_h1.mem["cache"] = (X, self.W1)  # the same as calling forward, without loops
        self.h1_relu = self.relu.forward(self.h1)
        self.h2 = self.h1_relu @ self.W2
        self.mul_h2.mem["cache"] = (self.h1_relu, self.W2)
        self.h2_soft = self.softmax.forward(self.h2)
        self.loss = self.cross_en.forward(self.h2_soft, labels)

    def backward(self, labels):
        self.loss_grad = self.cross_en.backward(labels)
        self.h2_soft_grad = self.softmax.backward(self.loss_grad)
        self.h2_grad, self.W2_grad = self.mul_h2.backward(self.h2_soft_grad)
        self.h1_relu_grad = self.relu.backward(self.h2_grad)
        self.h1_grad, self.W1_grad = self.mul_h1.backward(self.h1_relu_grad)


def computeAccuracy(prob, labels):
    return np.mean(np.argmax(prob, axis=-1) == np.argmax(labels, axis=-1))


def preprocess(images, labels):
    x = images.reshape(images.shape[0], -1) / 255.0
    return x, np.eye(10)[labels]


def train_one_step(model, x, y, learning_rate):
    model.forward(x, y)
    model.backward(y)
    model.W1 -= learning_rate * model.W1_grad
    model.W2 -= learning_rate * model.W2_grad
    return model.loss, computeAccuracy(model.h2_soft, y)


def train_model(model, x, y, *, epochs, batch_size, learning_rate, rng, verbose=True,
                description="Training"):
    for _ in tqdm(range(epochs), desc=description, disable=not verbose):
        shuffled = rng.permutation(x.shape[0])
        for batch in np.array_split(shuffled, int(np.ceil(len(shuffled) / batch_size))):
            train_one_step(model, x[batch], y[batch], learning_rate)
    return model


def train(x_train, y_train, x_validation, y_validation, *, latent_dims=(100, 200, 300),
          epochs=20, batch_size=100, learning_rate=0.1, seed=0, verbose=True):
    rng = np.random.default_rng(seed + 1)
    best, best_accuracy = None, None
    for dims in latent_dims:
        model = train_model(FullConnectionModel(dims), x_train, y_train, epochs=epochs,
                            batch_size=batch_size, learning_rate=learning_rate, rng=rng,
                            verbose=verbose)
        accuracy = test(model, x_validation, y_validation)
        if best_accuracy is None or accuracy > best_accuracy:
            best, best_accuracy = model, accuracy
    return best


def test(model, x, y):
    model.forward(x, y)
    return computeAccuracy(model.h2_soft, y)
