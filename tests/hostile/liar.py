"""Objects that lie about equality and about being arrays; values that may not cross."""
import numpy as np


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __bool__(self):
        return True


class LyingArray:
    def __array__(self, dtype=None, copy=None):
        return np.array([{"not": "numbers"}], dtype=object)


class ListLike(list):
    def __eq__(self, other):
        return True


class FakeArray:
    """Pretends to be a float array but converts to a plain one."""

    shape = (2,)
    dtype = np.dtype("float64")

    def __array__(self, dtype=None, copy=None):
        return np.array([1.0, 2.0])


def always_equal():
    return AlwaysEqual()


def lying_array():
    return LyingArray()


def fake_array():
    return FakeArray()


def list_like():
    return ListLike([1, 2])


def object_array():
    return np.array([1, "a"], dtype=object)


def structured_array():
    return np.zeros(3, dtype=[("a", "i4"), ("b", "f8")])


def string_array():
    return np.array(["a", "b"])


def patch_numpy():
    np.sum = lambda *args, **kwargs: 42
    np.allclose = lambda *args, **kwargs: True
    return np.sum([1, 2])


def deep():
    value = []
    for _ in range(1000):
        value = [value]
    return value


def huge_list(n):
    return [0.5] * n
