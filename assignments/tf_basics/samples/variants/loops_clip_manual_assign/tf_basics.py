"""A correct tf_basics in the way a student who follows the slides one formula at a time
writes it: nested loops for pooling and the convolution (the slide's z[u, v] formula
term by term), a sigmoid that clips its input before exp, tanh from its definition on
a clipped input, tf.Variable watched automatically, and fit_linear updating w and b with
w.assign(w - learning_rate * dw) and tf.pow for the square."""

import numpy as np
import tensorflow as tf


def sigmoid(x):
    x = np.clip(np.array(x, dtype=np.float64), -500, 500)  # 防止 exp 溢出
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    x = np.array(x, dtype=np.float64)
    out = x.copy()
    out[out < 0] = 0  # 小于0的部分置0
    return out


def tanh(x):
    x = np.clip(np.array(x, dtype=np.float64), -350, 350)  # e^350 仍是有限数
    return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))


def softmax(x, axis=-1):
    x = np.array(x, dtype=np.float64)
    x_max = np.max(x, axis=axis, keepdims=True)  # 减去最大值
    x_exp = np.exp(x - x_max)
    return x_exp / np.sum(x_exp, axis=axis, keepdims=True)


def max_pool2d(x, pool_size=2, stride=2):
    x = np.array(x)
    rows = (x.shape[0] - pool_size) // stride + 1
    cols = (x.shape[1] - pool_size) // stride + 1
    out = np.zeros((rows, cols), dtype=x.dtype)
    for u in range(rows):
        for v in range(cols):
            best = x[u * stride, v * stride]
            for i in range(pool_size):  # 窗口内逐个比较
                for j in range(pool_size):
                    best = max(best, x[u * stride + i, v * stride + j])
            out[u, v] = best
    return out


def avg_pool2d(x, pool_size=2, stride=2):
    x = np.array(x, dtype=np.float64)
    rows = (x.shape[0] - pool_size) // stride + 1
    cols = (x.shape[1] - pool_size) // stride + 1
    out = np.zeros((rows, cols))
    for u in range(rows):
        for v in range(cols):
            total = 0.0
            for i in range(pool_size):
                for j in range(pool_size):
                    total += x[u * stride + i, v * stride + j]
            out[u, v] = total / (pool_size * pool_size)  # 平均值, 不取整
    return out


def conv2d(x, kernel, bias=0.0):
    x = np.array(x, dtype=np.float64)
    k = np.array(kernel, dtype=np.float64)
    rows, cols = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    z = np.zeros((rows, cols))
    for u in range(rows):  # z[u, v] = sum_ij x[i + u, j + v] * k[i, j] + b
        for v in range(cols):
            for i in range(k.shape[0]):
                for j in range(k.shape[1]):
                    z[u, v] += x[i + u, j + v] * k[i, j]
            z[u, v] += bias
    return z


def tf_gradient(f, x):
    x = np.array(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    v = tf.Variable(x)  # 变量会被 GradientTape 自动追踪
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(f(v))
    grad = tape.gradient(y, v)
    if grad is None:  # f 与 x 无关
        return np.zeros_like(x)
    return grad.numpy()


def fit_linear(x, y, epochs=200, learning_rate=0.1):
    x = tf.constant(x, dtype=tf.float32)
    y = tf.constant(y, dtype=tf.float32)
    w = tf.Variable(0.0)
    b = tf.Variable(0.0)
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.pow(w * x + b - y, 2))  # 均方误差
        dw, db = tape.gradient(loss, [w, b])
        w.assign(w - learning_rate * dw)
        b.assign(b - learning_rate * db)
    return w.numpy().item(), b.numpy().item()
