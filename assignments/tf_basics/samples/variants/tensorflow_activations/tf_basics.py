"""TensorFlow basics: activations, pooling, convolution and autodiff (lecture, part 2 and 6).

The numpy functions are the formulas on the lecture's slides; `tf_gradient` and
`fit_linear` use `tf.constant`, `tf.Variable` and `tf.GradientTape`.

Run the demonstration with ``python -m reference.tf_basics [--quick]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf

POOL_SIZE = 2  # the slide's 2x2 pooling window
POOL_STRIDE = 2  # non-overlapping windows
FIT_EPOCHS = 200  # gradient-descent steps for the line fit
FIT_LEARNING_RATE = 0.1
QUICK_FIT_EPOCHS = 100

# The slide's 4x4 examples (the average-pooling slide has 31 in the corner).
SLIDE_MAX_POOL_INPUT = np.array(
    [[29, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], dtype=np.float64)
SLIDE_AVG_POOL_INPUT = np.array(
    [[31, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], dtype=np.float64)


def sigmoid(x):
    """Logistic sigmoid, 1 / (1 + exp(-x)), stable for large |x|.

    Args:
        x: array of any shape.

    Returns:
        float array of the shape of x, values in [0, 1].
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return tf.math.sigmoid(tf.constant(x)).numpy()  # TensorFlow's sigmoid is stable
    ### END SOLUTION


def relu(x):
    """Rectified linear unit, max(0, x), elementwise.

    Args:
        x: array of any shape.

    Returns:
        array of the shape of x.
    """
    ### BEGIN SOLUTION
    return tf.nn.relu(tf.constant(x)).numpy()
    ### END SOLUTION


def tanh(x):
    """Hyperbolic tangent, (e^x - e^-x) / (e^x + e^-x), elementwise.

    Args:
        x: array of any shape.

    Returns:
        float array of the shape of x, values in [-1, 1].
    """
    ### BEGIN SOLUTION
    return tf.math.tanh(tf.constant(x)).numpy()
    ### END SOLUTION


def softmax(x, axis=-1):
    """Softmax along one axis, exp(x_i) / sum_j exp(x_j), stable for large logits.

    Args:
        x: array of logits of any shape, e.g. (N, C).
        axis: the axis that is normalised.

    Returns:
        float array of the shape of x; entries along `axis` sum to 1.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return tf.nn.softmax(tf.constant(x), axis=axis).numpy()
    ### END SOLUTION


def max_pool2d(x, pool_size=POOL_SIZE, stride=POOL_STRIDE):
    """Max pooling of a 2-D array, valid windows only (no padding).

    Args:
        x: array of shape (H, W).
        pool_size: the side of the square window.
        stride: the step between windows.

    Returns:
        array of shape ((H - pool_size) // stride + 1, (W - pool_size) // stride + 1);
        each entry is the maximum of its window.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    out_h = (x.shape[0] - pool_size) // stride + 1
    out_w = (x.shape[1] - pool_size) // stride + 1
    out = np.empty((out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride, j * stride
            out[i, j] = x[top:top + pool_size, left:left + pool_size].max()
    return out
    ### END SOLUTION


def avg_pool2d(x, pool_size=POOL_SIZE, stride=POOL_STRIDE):
    """Average pooling of a 2-D array, valid windows only (no padding).

    Args:
        x: array of shape (H, W).
        pool_size: the side of the square window.
        stride: the step between windows.

    Returns:
        float array of shape ((H - pool_size) // stride + 1, (W - pool_size) // stride + 1);
        each entry is the mean of its window (not rounded: the slide's 36 is 36.5 truncated).
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    out_h = (x.shape[0] - pool_size) // stride + 1
    out_w = (x.shape[1] - pool_size) // stride + 1
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride, j * stride
            out[i, j] = x[top:top + pool_size, left:left + pool_size].mean()
    return out
    ### END SOLUTION


def conv2d(x, kernel, bias=0.0):
    """The slide's convolution: z[u, v] = sum_ij x[i + u, j + v] * k[i, j] + b.

    Valid cross-correlation with stride 1 (the kernel is not flipped), as
    `keras.layers.Conv2D` computes it.

    Args:
        x: array of shape (H, W).
        kernel: array of shape (kh, kw), kh <= H and kw <= W.
        bias: a scalar added to every output.

    Returns:
        float array of shape (H - kh + 1, W - kw + 1).
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    kh, kw = kernel.shape
    out_h, out_w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.full((out_h, out_w), float(bias))
    # One shifted copy of x per kernel entry: kh * kw array operations instead of a 4-deep loop.
    for i in range(kh):
        for j in range(kw):
            out += kernel[i, j] * x[i:i + out_h, j:j + out_w]
    return out
    ### END SOLUTION


def tf_gradient(f, x):
    """The gradient of f at x, by automatic differentiation with `tf.GradientTape`.

    If f returns a non-scalar tensor, the gradient of the sum of its entries is
    returned (what `tape.gradient` computes for a non-scalar target). If f does
    not depend on x, the gradient is zero.

    Args:
        f: a function of one tf tensor of the shape of x, returning a tf tensor,
            e.g. ``lambda t: tf.reduce_sum(t ** 2)``.
        x: array-like of any shape; floats keep their precision, integers become float64.

    Returns:
        float numpy array of the shape of x: d sum(f(x)) / dx.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)  # only floating tensors have gradients
    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)  # constants are not watched automatically, variables are
        y = tf.reduce_sum(f(t))
    grad = tape.gradient(y, t, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return grad.numpy()
    ### END SOLUTION


def fit_linear(x, y, epochs=FIT_EPOCHS, learning_rate=FIT_LEARNING_RATE):
    """Fits y ~ w * x + b by gradient descent on the mean squared error.

    w and b are `tf.Variable`s starting at 0; each epoch takes one full-batch
    step computed with `tf.GradientTape`.

    Args:
        x: array of shape (N,), the inputs.
        y: array of shape (N,), the targets.
        epochs: the number of gradient-descent steps.
        learning_rate: the step size.

    Returns:
        (w, b) as Python floats.
    """
    ### BEGIN SOLUTION
    x = tf.constant(x, dtype=tf.float32)
    y = tf.constant(y, dtype=tf.float32)
    w = tf.Variable(0.0)
    b = tf.Variable(0.0)
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(w * x + b - y))
        grad_w, grad_b = tape.gradient(loss, [w, b])
        w.assign_sub(learning_rate * grad_w)
        b.assign_sub(learning_rate * grad_b)
    return float(w.numpy()), float(b.numpy())
    ### END SOLUTION


def run_lecture(dataset=None, *, quick=False):
    """Fits a line to synthetic data (this assignment uses no dataset).

    Args:
        dataset: ignored; accepted so every reference has the same signature.
        quick: fewer epochs.

    Returns:
        (epochs, None): there is no accuracy to report.
    """
    epochs = QUICK_FIT_EPOCHS if quick else FIT_EPOCHS
    x, y = synthetic_line()
    fit_linear(x, y, epochs=epochs)
    return epochs, None


def synthetic_line(n=100, w=3.0, b=2.0, noise=0.1, seed=0):
    """Noisy points on the line y = w * x + b, with x uniform in [-1, 1].

    Returns:
        (x, y), float32 arrays of shape (n,).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=n)
    y = w * x + b + noise * rng.normal(size=n)
    return x.astype(np.float32), y.astype(np.float32)


def main(argv=None):
    """Prints the slides' examples and fits a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer fitting epochs")
    args = parser.parse_args(argv)

    np.set_printoptions(precision=4, suppress=True)
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    print("sigmoid([-1000, 0, 1000]) =", sigmoid(np.array([-1000.0, 0.0, 1000.0])))
    print("relu([-2, 0, 3]) =", relu(np.array([-2.0, 0.0, 3.0])))
    print("tanh([-1, 0, 1]) =", tanh(np.array([-1.0, 0.0, 1.0])))
    print("softmax(", logits.tolist(), ") =\n", softmax(logits))
    print("max pooling of the slide's 4x4 example:\n", max_pool2d(SLIDE_MAX_POOL_INPUT))
    print("average pooling of the slide's 4x4 example (the slide truncates 36.5):\n",
          avg_pool2d(SLIDE_AVG_POOL_INPUT))
    print("conv2d with a 2x2 kernel of ones on the same input:\n",
          conv2d(SLIDE_MAX_POOL_INPUT, np.ones((2, 2))))
    print("d/dx sum(x**3) at [1, 2, 3] =", tf_gradient(lambda t: t ** 3, np.array([1.0, 2.0, 3.0])))

    epochs = QUICK_FIT_EPOCHS if args.quick else FIT_EPOCHS
    x, y = synthetic_line()
    w, b = fit_linear(x, y, epochs=epochs)
    print(f"fit_linear on y = 3x + 2 + noise, {epochs} epochs: w={w:.3f}, b={b:.3f}")


if __name__ == "__main__":
    main()
