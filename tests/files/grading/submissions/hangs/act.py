import numpy as np


def relu(x):
    while True:  # forgot to advance the loop
        pass


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))
