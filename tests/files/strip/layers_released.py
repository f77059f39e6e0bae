"""A tiny reference with every kind of marker.

Students write the bodies; the docstrings stay.
"""

import numpy as np

SCALE = 2.0  # kept as is

raise NotImplementedError("Write the code for this part of layers.py")


def double(x):
    """Returns 2 x.

    Args:
        x: array of shape (N, D).
    """
    raise NotImplementedError("Write the body of double")


class Layer:
    """H = X W."""

    raise NotImplementedError("Write this part of the class Layer")

    def forward(self, X, W):
        """Args: X (N, D), W (D, M). Returns: H (N, M)."""
        self.mem = {"X": X}
        raise NotImplementedError("Write the missing part of Layer.forward")
        return H

    def backward(self, grad_H):
        """Returns (grad_X, grad_W)."""
        raise NotImplementedError("Write the body of Layer.backward")
        return grad_X, grad_W


def check_double():
    assert double(1.0) == 2.0
