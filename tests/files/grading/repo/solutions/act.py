"""Two activations."""

import numpy as np


def relu(x):
    """ReLU of an array of any shape."""
    ### BEGIN SOLUTION
    return np.maximum(x, 0.0)
    ### END SOLUTION


def sigmoid(x):
    """Sigmoid of an array of any shape, stable for large |x|."""
    ### BEGIN SOLUTION
    out = np.empty_like(x, dtype=float)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    exp_x = np.exp(x[~positive])
    out[~positive] = exp_x / (1.0 + exp_x)
    return out
    ### END SOLUTION
