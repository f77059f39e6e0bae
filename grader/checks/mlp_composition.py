"""Error carried forward: the student's own layers composed in the grader's process.

A model check (forward, backward, a training step) compares the student's model with the
composition of the student's OWN components - FullConnectionLayer, Relu, Softmax,
CrossEntropy - called one by one through the proxy, their outputs read back as plain arrays
and passed on by the grader. A model that composes its layers correctly earns its points
even when one layer is wrong; that layer is charged in its own part. A composition that
learns nothing (all-zero gradients) never earns anything (issue 9's degenerate-answer rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.arrays import as_array, as_number
from grader.i18n import Domain

_, _n = Domain("checks").functions()


@dataclass(frozen=True)
class Composition:
    """What the student's own layers give for one batch, as plain float64 arrays.

    Attributes:
        stages: every intermediate, by the model attribute it corresponds to: h1 (N, H),
            h1_relu (N, H), h2 (N, 10), h2_soft (N, 10), loss (), loss_grad (N, 10),
            h2_soft_grad (N, 10), h2_grad (N, H), W2_grad (H, 10), h1_relu_grad (N, H),
            W1_grad (785, H).
        inputs: each component call's inputs, by the stage it produced (for naming which
            component is wrong: the grader can ask the reference the same question).
    """

    stages: dict[str, np.ndarray]
    inputs: dict[str, tuple[np.ndarray, ...]]

    @property
    def learns(self) -> bool:
        """Whether both weight gradients are non-zero (a zero backward earns nothing)."""
        return all(np.any(self.stages[name] != 0) for name in ("W1_grad", "W2_grad"))


def _pair(received: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise AssertionError(_("{what} returned {type}; expected a pair", what=what,
                               type=type(received).__name__))
    return received[0], received[1]


def compose(module: Any, x: np.ndarray, y: np.ndarray, w1: np.ndarray,
            w2: np.ndarray) -> Composition | None:
    """Runs the student's layers one by one, as the lecture's model does.

    Args:
        module: the student's `mlp_numpy` (through the proxy).
        x: (N, 784) images; y: (N, 10) one-hot labels; w1: (785, H); w2: (H, 10).

    Returns:
        The composition, or None when a component raises or returns something that is not
        an array of numbers (the model check then judges against the reference alone).
    """
    try:
        fc1, relu, fc2 = module.FullConnectionLayer(), module.Relu(), module.FullConnectionLayer()
        softmax, loss_layer = module.Softmax(), module.CrossEntropy()
        s: dict[str, np.ndarray] = {}
        inputs: dict[str, tuple[np.ndarray, ...]] = {}

        def keep(name: str, value: Any, *args: np.ndarray) -> np.ndarray:
            s[name] = np.asarray(as_array(value, name), dtype=np.float64)
            inputs[name] = args
            return s[name]

        xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        h1 = keep("h1", fc1.forward(xb, w1), xb, w1)
        r = keep("h1_relu", relu.forward(h1), h1)
        h2 = keep("h2", fc2.forward(r, w2), r, w2)
        p = keep("h2_soft", softmax.forward(h2), h2)
        s["loss"] = np.asarray(as_number(loss_layer.forward(p, y), "loss"))
        inputs["loss"] = (p, y)
        g = keep("loss_grad", loss_layer.backward(y), p, y)
        g = keep("h2_soft_grad", softmax.backward(g), h2, g)
        g2, gw2 = _pair(fc2.backward(g), "fc2")
        keep("W2_grad", gw2, r, w2, g)
        g2 = keep("h2_grad", g2, r, w2, g)
        g1 = keep("h1_relu_grad", relu.backward(g2), h1, g2)
        _grad_x, gw1 = _pair(fc1.backward(g1), "fc1")
        keep("W1_grad", gw1, xb, w1, g1)
        return Composition(s, inputs)
    except Exception:  # noqa: BLE001 - a component that fails has no composition to offer
        return None


def agrees(received: Any, expected: np.ndarray, *, rtol: float = 1e-6,
           atol: float = 1e-8) -> bool:
    """Whether a received value equals an expected one (same shape, close, finite)."""
    try:
        array = np.asarray(received, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return (array.shape == np.shape(expected) and bool(np.all(np.isfinite(array)))
            and bool(np.allclose(array, expected, rtol=rtol, atol=atol)))
