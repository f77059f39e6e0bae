"""The evaluator: trains and runs a model rebuilt from a validated spec, in a clean process.

This module is sent as trusted source to a sandboxed runtime whose workspace is empty
(`grader.evaluator.runtime.EvaluatorRuntime`): no student code is ever imported in
that process. It receives plain data only: a spec that `grader.evaluator.spec` has
validated against its allow-list, numeric arrays and numbers. Models are rebuilt with
Keras's own constructors from the spec's listed arguments; nothing is deserialised
(no ``from_config``, no ``load_model``, no custom objects). The allow-list is checked
again here, so a spec that did not come through the grader's validation fails.

Only the standard library is imported at module level; numpy and Keras when a
function runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

LAYER_CLASSES = ("Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D",
                 "GlobalAveragePooling2D", "Flatten", "Reshape", "Dropout", "Activation", "ReLU",
                 "Softmax")
OPTIMIZER_CLASSES = ("SGD", "Adam", "AdamW", "Nadam", "Adamax", "RMSprop", "Adagrad",
                     "Adadelta")
LOSS_FUNCTIONS = ("mean_squared_error", "mean_absolute_error", "categorical_crossentropy",
                  "sparse_categorical_crossentropy", "binary_crossentropy", "kl_divergence",
                  "categorical_hinge", "hinge", "squared_hinge", "poisson")
PLAIN = (str, int, float, bool, type(None))
ACCURACY_KEYS = ("accuracy", "acc", "categorical_accuracy")


def _plain(value: Any) -> bool:
    """Only numbers, strings, booleans, None and lists of them (no objects, no dicts)."""
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return isinstance(value, PLAIN)


def _build(spec: dict[str, Any], seed: int) -> Any:
    """A fresh Sequential model from ``spec``, initialised by Keras from ``seed``."""
    import keras

    keras.utils.set_random_seed(int(seed))
    stack = [keras.Input(shape=tuple(int(d) for d in spec["input_shape"]))]
    for layer in spec["layers"]:
        kind = layer["class"]
        args = layer["args"]
        if kind not in LAYER_CLASSES or not isinstance(args, dict) or not all(
                isinstance(key, str) and _plain(value) for key, value in args.items()):
            raise ValueError(f"layer class {kind!r} or its arguments are not allowed")
        if kind == "Reshape":
            args = {"target_shape": tuple(args["target_shape"])}
        built = getattr(keras.layers, kind)(**args)
        built.trainable = bool(layer.get("trainable", True))
        stack.append(built)
    return keras.Sequential(stack)


def _compile(model: Any, spec: dict[str, Any]) -> None:
    import keras

    settings = spec.get("compile")
    if not settings:
        raise ValueError("the model is not compiled")
    optimizer = settings["optimizer"]
    loss = settings["loss"]
    if optimizer["class"] not in OPTIMIZER_CLASSES or loss["name"] not in LOSS_FUNCTIONS:
        raise ValueError("optimizer or loss not allowed")
    if not all(_plain(v) for v in (*optimizer["args"].values(), *loss["args"].values())):
        raise ValueError("optimizer or loss arguments are not plain")
    loss_args = {key: value for key, value in loss["args"].items()
                 if key in ("from_logits", "label_smoothing")}
    loss_fn = getattr(keras.losses, loss["name"])
    model.compile(optimizer=getattr(keras.optimizers, optimizer["class"])(**optimizer["args"]),
                  loss=(lambda y, p: loss_fn(y, p, **loss_args)) if loss_args else loss_fn,
                  metrics=["accuracy"])


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _budget_callback(keras: Any, time_budget_s: float, start: float) -> Any:
    """Records each epoch's loss and accuracy; stops training past the time budget."""

    class BudgetCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.loss: list[float | None] = []
            self.accuracy: list[float | None] = []
            self.batches = 0
            self.epochs_done = 0
            self.stopped = False

        def _over(self) -> None:
            if time.perf_counter() - start > time_budget_s:
                self.stopped = True
                self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batches += 1
            self._over()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            self.loss.append(_float(logs.get("loss")))
            self.accuracy.append(next((_float(logs[key]) for key in ACCURACY_KEYS
                                       if key in logs), None))
            if not self.stopped:
                self.epochs_done += 1  # an epoch cut short by the budget does not count
            self._over()

    return BudgetCallback()


def fit_and_predict(spec: dict[str, Any], x_train: Any, y_train: Any, x_test: Any, *,
                    epochs: int, batch_size: int, seed: int,
                    time_budget_s: float) -> dict[str, Any]:
    """Build from ``spec`` (initialised from ``seed``), train under the budget, predict.

    Args:
        spec: A validated spec (`grader.evaluator.spec.ModelSpec.as_plain`).
        x_train: float32 (N, *input_shape).
        y_train: float32 (N, 10), one-hot.
        x_test: float32 (M, *input_shape).
        epochs: Epochs at most.
        batch_size: Examples per batch.
        seed: Seeds Python, numpy and TensorFlow before the model is built.
        time_budget_s: Training stops at the first batch end past this many seconds.

    Returns:
        ``{"predictions": float32 (M, ...), "history": {"loss": [...], "accuracy": [...]},
        "epochs_done": int, "batches_done": int, "stopped_by_budget": bool,
        "seconds": float, "fit_seconds": float, "predict_seconds": float}``.
    """
    import keras
    import numpy as np

    model = _build(spec, seed)
    _compile(model, spec)
    start = time.perf_counter()
    callback = _budget_callback(keras, float(time_budget_s), start)
    model.fit(x_train, y_train, epochs=int(epochs), batch_size=int(batch_size), verbose=0,
              shuffle=True, callbacks=[callback])
    fitted = time.perf_counter()
    predictions = model.predict(x_test, batch_size=int(batch_size), verbose=0)
    done = time.perf_counter()
    return {
        "predictions": np.asarray(predictions, dtype="float32"),
        "history": {"loss": callback.loss, "accuracy": callback.accuracy},
        "epochs_done": callback.epochs_done,
        "batches_done": callback.batches,
        "stopped_by_budget": callback.stopped,
        "seconds": done - start,
        "fit_seconds": fitted - start,
        "predict_seconds": done - fitted,
    }


def predict(spec: dict[str, Any], x: Any, *, weights: list[Any] | None = None,
            seed: int = 0) -> Any:
    """The rebuilt model's predictions on ``x``, with ``weights`` or a seeded initialisation.

    Args:
        spec: A validated spec.
        x: float32 (M, *input_shape).
        weights: Every weight array in the model's order, or None.
        seed: The initialisation's seed when ``weights`` is None.

    Returns:
        float32 array (M, ...).
    """
    import numpy as np

    model = _build(spec, seed)
    if weights is not None:
        model.set_weights([np.asarray(w, dtype="float32") for w in weights])
    return np.asarray(model.predict(x, batch_size=64, verbose=0), dtype="float32")


def loss_after_one_step(spec: dict[str, Any], x: Any, y: Any, *,
                        seed: int = 0) -> dict[str, float | None]:
    """The loss on ``(x, y)`` before and after one training step of the rebuilt model.

    Returns:
        ``{"before": float | None, "after": float | None}`` (None for a non-finite loss).
    """
    model = _build(spec, seed)
    _compile(model, spec)

    def loss() -> float | None:
        value = model.evaluate(x, y, verbose=0, return_dict=True)
        return _float(value.get("loss") if isinstance(value, dict) else value)

    before = loss()
    model.train_on_batch(x, y)
    return {"before": before, "after": loss()}
