"""Grader-side functions that hidden tests may hand to student code by name.

A hidden test writes ``student.tf_basics.tf_gradient(Callable("square"), x)``;
the runtime looks ``"square"`` up in :data:`REGISTRY`. Code is never sent.
Functions are written with operators only, so they work on floats, numpy
arrays and TensorFlow tensors alike; ``sigmoid_sum`` and ``sin_sum`` import
TensorFlow lazily, only when called on a tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def square(x: Any) -> Any:
    """Return ``x * x`` (elementwise)."""
    return x * x


def cube_sum(x: Any) -> Any:
    """Return the sum of ``x ** 3`` over all elements."""
    return _reduce_sum(x * x * x)


def sin_sum(x: Any) -> Any:
    """Return the sum of ``sin(x)`` over all elements."""
    return _reduce_sum(_module_of(x).sin(x))


def sigmoid_sum(x: Any) -> Any:
    """Return the sum of ``1 / (1 + exp(-x))`` over all elements."""
    return _reduce_sum(1.0 / (1.0 + _module_of(x).exp(-x)))


def constant(x: Any) -> Any:
    """Return 3.0, whatever ``x`` is: a function that does not depend on its input."""
    module = type(x).__module__
    if module.startswith(("tensorflow", "keras")):
        import tensorflow as tf

        return tf.constant(3.0, dtype=x.dtype)
    return 3.0


def tanh_sum(x: Any) -> Any:
    """Return the sum of ``tanh(x)`` over all elements."""
    return _reduce_sum(_module_of(x).tanh(x))


def _module_of(x: Any) -> Any:
    """The math library that matches ``x``: tf.math, numpy or math."""
    module = type(x).__module__
    if module.startswith(("tensorflow", "keras")):
        import tensorflow as tf

        return tf.math
    if module == "numpy":
        import numpy as np

        return np
    return math


def _reduce_sum(x: Any) -> Any:
    """Sum all elements with the library ``x`` belongs to."""
    module = type(x).__module__
    if module.startswith(("tensorflow", "keras")):
        import tensorflow as tf

        return tf.reduce_sum(x)
    if module == "numpy":
        return x.sum()
    return x


REGISTRY: dict[str, Callable[[Any], Any]] = {
    "square": square,
    "cube_sum": cube_sum,
    "sin_sum": sin_sum,
    "sigmoid_sum": sigmoid_sum,
    "constant": constant,
    "tanh_sum": tanh_sum,
}
"""Every function a hidden test may pass by name."""
