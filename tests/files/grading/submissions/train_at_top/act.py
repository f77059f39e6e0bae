import numpy as np

print("training for a long time...")
LIMIT = 0.0


def relu(x):
    return np.maximum(x, LIMIT)


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


while True:
    pass
