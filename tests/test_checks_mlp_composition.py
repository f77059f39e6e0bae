"""`grader.checks.mlp_composition`: the student's own layers composed in the grader's process.

The composition of the reference's layers is the reference model; a wrong layer changes the
composition (so a model built on it is judged against it, error carried forward); a zero
backward composes to gradients that learn nothing; a layer that raises gives no composition.
"""

from __future__ import annotations

import types

import numpy as np

import reference.mlp_numpy as ref
from grader.checks.mlp_composition import agrees, compose


def _inputs():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(5, ref.INPUT_DIMS))
    y = np.eye(10)[rng.integers(0, 10, size=5)]
    return x, y, rng.normal(size=(785, 7)) / 20, rng.normal(size=(7, 10))


def _module(**layers) -> types.SimpleNamespace:
    names = ("FullConnectionLayer", "Relu", "Softmax", "CrossEntropy")
    return types.SimpleNamespace(**{name: layers.get(name, getattr(ref, name)) for name in names})


class DiagonalSoftmax(ref.Softmax):
    def backward(self, grad_y):
        s = self.mem["s"]
        return grad_y * s * (1 - s)


class ZeroRelu(ref.Relu):
    def backward(self, grad_y):
        return np.zeros_like(grad_y)


class BrokenCrossEntropy(ref.CrossEntropy):
    def backward(self, y):
        raise ValueError("not written yet")


def test_the_reference_layers_compose_to_the_reference_model():
    x, y, w1, w2 = _inputs()
    model = ref.FullConnectionModel(7, rng=0)
    model.W1, model.W2 = w1.copy(), w2.copy()
    model.forward(x, y)
    model.backward(y)
    composition = compose(_module(), x, y, w1, w2)
    assert composition.learns
    for name in ("h1", "h1_relu", "h2", "h2_soft", "W1_grad", "W2_grad", "h2_soft_grad"):
        assert agrees(getattr(model, name), composition.stages[name]), name
    # Two computations of one loss (the composition and the model): equal within rounding
    np.testing.assert_allclose(float(composition.stages["loss"]), float(model.loss), rtol=1e-12)


def test_a_wrong_layer_changes_the_composition_after_it_only():
    x, y, w1, w2 = _inputs()
    right = compose(_module(), x, y, w1, w2)
    wrong = compose(_module(Softmax=DiagonalSoftmax), x, y, w1, w2)
    assert agrees(wrong.stages["h2_soft"], right.stages["h2_soft"])
    assert agrees(wrong.stages["loss_grad"], right.stages["loss_grad"])
    assert not agrees(wrong.stages["h2_soft_grad"], right.stages["h2_soft_grad"])
    assert not agrees(wrong.stages["W1_grad"], right.stages["W1_grad"])
    assert wrong.inputs["h2_soft_grad"][1] is wrong.stages["loss_grad"]


def test_a_zero_backward_learns_nothing_and_a_raising_layer_composes_nothing():
    x, y, w1, w2 = _inputs()
    assert not compose(_module(Relu=ZeroRelu), x, y, w1, w2).learns
    assert compose(_module(CrossEntropy=BrokenCrossEntropy), x, y, w1, w2) is None


def test_agrees_wants_the_shape_finite_values_and_closeness():
    assert agrees([[1.0, 2.0]], np.array([[1.0, 2.0]]))
    assert not agrees([1.0, 2.0], np.array([[1.0, 2.0]]))
    assert not agrees([np.nan], np.array([np.nan]))
    assert not agrees("text", np.array([1.0]))
    assert not agrees([1.001], np.array([1.0]))
