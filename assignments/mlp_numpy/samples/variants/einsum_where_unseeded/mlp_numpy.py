"""A correct mlp_numpy written differently from the reference: einsum, np.where,
other names in `mem`, list returns, an unseeded initialiser and a hand-rolled loop."""

import numpy as np

INPUT_DIMS = 784
NUM_CLASSES = 10


class FullConnectionLayer:
    def __init__(self):
        self.mem = {}

    def forward(self, X, W):
        self.mem["inputs"], self.mem["weights"] = X, W
        return np.einsum("nd,dm->nm", X, W)

    def backward(self, grad_H):
        X, W = self.mem["inputs"], self.mem["weights"]
        grad_X = np.einsum("nm,dm->nd", grad_H, W)
        grad_W = np.einsum("nd,nm->dm", X, grad_H)
        return [grad_X, grad_W]


class Relu:
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        self.mem["positive"] = x >= 0  # >= instead of >: the same values
        return np.where(x >= 0, x, 0.0)

    def backward(self, grad_y):
        return np.where(self.mem["positive"], grad_y, 0.0)


class Softmax:
    def __init__(self):
        self.mem = {}

    def forward(self, x):
        z = x - x.max(axis=-1, keepdims=True)
        log_s = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        self.mem["probs"] = np.exp(log_s)
        return self.mem["probs"]

    def backward(self, grad_y):
        s = self.mem["probs"]
        # J^T g without building the Jacobian: s * (g - <g, s>)
        return s * (grad_y - (grad_y * s).sum(axis=1, keepdims=True))


class CrossEntropy:
    def __init__(self):
        self.mem = {}

    def forward(self, p, y):
        self.mem["clipped"] = np.clip(p, 1e-12, None)
        n = p.shape[0]
        total = 0.0
        for i in range(n):
            total -= np.dot(y[i], np.log(self.mem["clipped"][i]))
        return total / n

    def backward(self, y):
        p = self.mem["clipped"]
        return -(y / p) / len(p)


class FullConnectionModel:
    def __init__(self, latent_dims):
        self.W1 = np.random.randn(INPUT_DIMS + 1, latent_dims) * np.sqrt(2.0 / (INPUT_DIMS + 1))
        self.W2 = np.random.randn(latent_dims, NUM_CLASSES) * np.sqrt(2.0 / latent_dims)
        self.mul_h1 = FullConnectionLayer()
        self.relu = Relu()
        self.mul_h2 = FullConnectionLayer()
        self.softmax = Softmax()
        self.cross_en = CrossEntropy()

    def forward(self, X, labels):
        X = np.hstack([X, np.ones((len(X), 1))])
        self.h1 = self.mul_h1.forward(X, self.W1)
        self.h1_relu = self.relu.forward(self.h1)
        self.h2 = self.mul_h2.forward(self.h1_relu, self.W2)
        self.h2_soft = self.softmax.forward(self.h2)
        self.loss = self.cross_en.forward(self.h2_soft, labels)

    def backward(self, labels):
        self.loss_grad = self.cross_en.backward(labels)
        self.h2_soft_grad = self.softmax.backward(self.loss_grad)
        self.h2_grad, self.W2_grad = self.mul_h2.backward(self.h2_soft_grad)
        self.h1_relu_grad = self.relu.backward(self.h2_grad)
        self.h1_grad, self.W1_grad = self.mul_h1.backward(self.h1_relu_grad)


def computeAccuracy(prob, labels):
    correct = 0
    for row, label in zip(prob, labels, strict=True):
        correct += int(row.argmax() == label.argmax())
    return correct / len(prob)


def preprocess(images, labels):
    x = np.asarray(images, dtype=np.float64).reshape(-1, INPUT_DIMS) / 255
    y = np.zeros((len(labels), NUM_CLASSES))
    y[np.arange(len(labels)), labels] = 1
    return x, y


def train_one_step(model, x, y, learning_rate):
    model.forward(x, y)
    model.backward(y)
    loss, accuracy = model.loss, computeAccuracy(model.h2_soft, y)
    model.W1 = model.W1 - learning_rate * model.W1_grad
    model.W2 = model.W2 - learning_rate * model.W2_grad
    return loss, accuracy


def train_model(model, x, y, *, epochs, batch_size, learning_rate, rng=None, verbose=True,
                description="Training"):
    for epoch in range(epochs):
        index = np.arange(len(x))
        np.random.shuffle(index)
        for start in range(0, len(x), batch_size):
            batch = index[start:start + batch_size]
            train_one_step(model, x[batch], y[batch], learning_rate)
        if verbose:
            print(description, "epoch", epoch + 1)
    return model


def train(x_train, y_train, x_validation, y_validation, *, latent_dims=(100, 200, 300),
          epochs=20, batch_size=100, learning_rate=0.1, seed=0, verbose=True):
    results = []
    for dims in latent_dims:
        model = FullConnectionModel(dims)
        train_model(model, x_train, y_train, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, verbose=verbose)
        results.append((test(model, x_validation, y_validation), -len(results), model))
    return max(results, key=lambda item: item[:2])[2]


def test(model, x, y):
    model.forward(x, y)
    return computeAccuracy(model.h2_soft, y)
