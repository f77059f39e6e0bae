"""A correct tf_basics written differently from the reference: sliding windows,
tanh-based sigmoid, log-sum-exp softmax, relu with >=, tf.Variable and a Keras optimizer."""

import numpy as np
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def relu(x):
    x = np.asarray(x)
    return np.where(x >= 0, x, 0)


def tanh(x):
    x = np.asarray(x, dtype=float)
    return 2.0 * sigmoid(2.0 * x) - 1.0


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    log_z = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return np.exp(x - log_z)


def _windows(x, pool_size, stride):
    return sliding_window_view(np.asarray(x), (pool_size, pool_size))[::stride, ::stride]


def max_pool2d(x, pool_size=2, stride=2):
    return _windows(x, pool_size, stride).max(axis=(2, 3))


def avg_pool2d(x, pool_size=2, stride=2):
    return _windows(x, pool_size, stride).mean(axis=(2, 3))


def conv2d(x, kernel, bias=0.0):
    kernel = np.asarray(kernel, dtype=float)
    patches = sliding_window_view(np.asarray(x, dtype=float), kernel.shape)
    return np.einsum("uvij,ij->uv", patches, kernel) + bias


def tf_gradient(f, x):
    x = np.asarray(x)
    v = tf.Variable(x if x.dtype.kind == "f" else x.astype("float64"))
    with tf.GradientTape() as tape:
        out = f(v)
    grad = tape.gradient(out, v)
    return np.zeros(x.shape) if grad is None else grad.numpy()


def fit_linear(x, y, epochs=200, learning_rate=0.1):
    w, b = tf.Variable(0.0), tf.Variable(0.0)
    optimizer = tf.keras.optimizers.SGD(learning_rate=learning_rate)
    x, y = tf.constant(x, tf.float32), tf.constant(y, tf.float32)
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            loss = tf.keras.losses.MeanSquaredError()(y, w * x + b)
        optimizer.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b], strict=True))
    return w.numpy().item(), b.numpy().item()
