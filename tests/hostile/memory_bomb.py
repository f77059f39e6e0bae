"""Allocates far more memory than allowed."""
import numpy as np


def allocate(gigabytes):
    return float(np.ones(int(gigabytes * 2**30 / 8)).sum())
