import numpy as np


def relu(x):
    return np.maximum(x, 0.1)  # wrong floor


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))
