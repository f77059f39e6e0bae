"""A tiny reference with every kind of marker.

Students write the bodies; the docstrings stay.
"""

import numpy as np

SCALE = 2.0  # kept as is

### BEGIN SOLUTION
_CACHE_FOR_THE_SOLUTION = {"scale": SCALE}
### END SOLUTION


def double(x):
    """Returns 2 x.

    Args:
        x: array of shape (N, D).
    """
    ### BEGIN SOLUTION
    y = np.asarray(x) * SCALE
    return y
    ### END SOLUTION


class Layer:
    """H = X W."""

    ### BEGIN SOLUTION
    solution_only_attribute = "secret value here"
    ### END SOLUTION

    def forward(self, X, W):
        """Args: X (N, D), W (D, M). Returns: H (N, M)."""
        self.mem = {"X": X}
        # BEGIN SOLUTION
        H = X @ W
        self.mem["W"] = W
        # END SOLUTION
        return H

    def backward(self, grad_H):
        """Returns (grad_X, grad_W)."""
        ### BEGIN SOLUTION
        grad_X = grad_H @ self.mem["W"].T
        grad_W = self.mem["X"].T @ grad_H
        ### END SOLUTION
        return grad_X, grad_W


def check_double():
    assert double(1.0) == 2.0
    ### BEGIN HIDDEN TESTS
    assert double(-3.0) == -6.0, "hidden edge case"
    ### END HIDDEN TESTS
