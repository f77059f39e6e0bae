"""Grader-side Keras tools that run inside the student runtime, on the student's objects.

Trusted grader code, staged into the sandbox with the rest of ``grader.runtime``.
A hidden test calls ``student.tool("describe_model", model)``; the runtime calls
``TOOLS["describe_model"](model)`` with handle arguments resolved to the student's
objects, and only plain data comes back (as from any call). Doing the work here
keeps a model's weights, a training loop and 55,000 preprocessed images inside the
runtime: only a description, a history or predictions cross the pipe.

Only the standard library is imported at module level; numpy and Keras are
imported when a tool runs (the student's code has imported them already).

Tools:

- ``describe_model(model, *, input_shape=None) -> dict``: layers and compile settings.
- ``preprocess_kept(fn, images, labels) -> dict``: runs the student's preprocessing
  and keeps its result in the runtime (a handle) with a plain summary.
- ``fit_and_predict(model, x_train, y_train, x_test, *, epochs, batch_size, seed,
  time_budget_s) -> dict``: trains under a time budget, returns the predictions.
- ``loss_after_one_step(model, x, y) -> {"before": float, "after": float}``.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

LAYER_SETTINGS = ("units", "activation", "filters", "kernel_size", "strides", "padding",
                  "rate", "pool_size")
"""The config keys `describe_model` reports for each layer (those the layer has)."""
ACTIVATION_LAYERS = {"ReLU": "relu", "Softmax": "softmax", "ELU": "elu"}
"""Layer classes that are an activation function and nothing else."""
ACCURACY_KEYS = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy")
"""History keys read as the training accuracy, first found wins."""
GPU_MEMORY_ENV = "GRADER_GPU_MEMORY_MB"  # same name as grader.runtime.sandbox.GPU_MEMORY_ENV


class Kept:
    """A value kept in the runtime (it crosses as a handle, never as data).

    `preprocess_kept` wraps the student's preprocessed ``(x, y)`` in one, so that
    `fit_and_predict` can train on it without the arrays crossing the pipe twice.

    Attributes:
        value: The kept value.
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<kept data>"


# -- describe_model -------------------------------------------------------------------


def _name(value: Any) -> str | None:
    """A readable name for an activation, loss or metric given as a str, function,
    class, instance or serialised dict."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # a serialised Keras object
        inner = value.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
        if isinstance(inner, str):  # a plain function, e.g. tf.nn.softmax -> "softmax_v2"
            return _strip_version(inner)
        return str(value.get("class_name") or value.get("registered_name") or value)
    if isinstance(value, type):
        return f"<class {value.__name__}>"
    name = getattr(value, "__name__", None)
    if isinstance(name, str):
        return _strip_version(name)
    return type(value).__name__


def _strip_version(name: str) -> str:
    """tf.nn's functions carry a version suffix (``softmax_v2``); the activation is the same."""
    return re.sub(r"_v\d+$", "", name)


def _listify(value: Any) -> Any:
    """Tuples (kernel sizes, strides) as lists of ints; other values unchanged."""
    if isinstance(value, (tuple, list)):
        return [_listify(item) for item in value]
    return value


def _layer_config(layer: Any) -> dict[str, Any]:
    """The relevant settings of one layer, as plain data."""
    try:
        config = layer.get_config()
    except Exception:  # noqa: BLE001 - a student's layer without a usable get_config
        config = {}
    settings: dict[str, Any] = {}
    for key in LAYER_SETTINGS:
        if key not in config:
            continue
        value = config[key]
        if key == "activation":
            value = _name(value)
        elif key == "rate":
            value = float(value)
        elif key in ("units", "filters") and value is not None:
            value = int(value)
        elif key in ("kernel_size", "strides", "pool_size"):
            value = _listify(value)
            if isinstance(value, int):
                value = [value]
        settings[key] = value
    kind = type(layer).__name__
    if kind in ACTIVATION_LAYERS and "activation" not in settings:
        settings["activation"] = ACTIVATION_LAYERS[kind]
    return settings


def _is_container(layer: Any, keras: Any) -> bool:
    """A layer that holds other layers: a Sequential, functional or subclassed model."""
    return isinstance(layer, keras.Model)


def _leaf_layers(model: Any, keras: Any) -> list[Any]:
    """Every non-container layer, depth first in each container's own order."""
    found: list[Any] = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if _is_container(layer, keras):
            found.extend(_leaf_layers(layer, keras))
        else:
            found.append(layer)
    return found


def _trace(model: Any, leaves: list[Any], batch: Any) -> list[tuple[Any, Any]] | None:
    """Call the model once on ``batch`` and record which leaf layers ran, in order,
    with their output shapes; None if that fails (the caller falls back)."""
    order: list[tuple[Any, Any]] = []
    patched = []
    try:
        for layer in leaves:
            original = layer.call

            def recorder(*args: Any, __layer: Any = layer, __call: Any = original,
                         **kwargs: Any) -> Any:
                out = __call(*args, **kwargs)
                if all(seen is not __layer for seen, _ in order):
                    shape = getattr(out, "shape", None)
                    order.append((__layer, None if shape is None else  # batch axis: None
                                  [None, *(None if d is None else int(d) for d in shape[1:])]))
                return out

            object.__setattr__(layer, "call", recorder)
            patched.append(layer)
        with warnings.catch_warnings():  # Keras warns when it builds a subclassed model
            warnings.simplefilter("ignore")
            model(batch, training=False)
    except Exception:  # noqa: BLE001 - tracing is best effort
        return None
    finally:
        for layer in patched:
            try:
                object.__delattr__(layer, "call")
            except AttributeError:
                pass
    return order


def _input_shape(model: Any, input_shape: Any) -> tuple[int, ...] | None:
    """The shape of one example: the given one, or the model's declared input."""
    if input_shape is not None:
        return tuple(int(d) for d in input_shape)
    try:
        shape = model.inputs[0].shape[1:]
    except Exception:  # noqa: BLE001 - subclassed models have no declared inputs
        # A built subclassed model remembers the shape it was first called on.
        built_with = getattr(model, "_build_shapes_dict", None)
        if not isinstance(built_with, dict) or len(built_with) != 1:
            return None
        first = next(iter(built_with.values()))
        if not isinstance(first, (tuple, list)) or len(first) < 2:
            return None
        shape = first[1:]
    if any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape)


def _count_params(layer: Any) -> int:
    try:
        return int(layer.count_params())
    except Exception:  # noqa: BLE001 - an unbuilt layer
        return 0


def describe_model(model: Any, *, input_shape: Any = None) -> dict[str, Any]:
    """Describe a Keras model's layers and compile settings as plain data.

    Layers are listed flattened through nested models (AlexNet's ``conv`` and
    ``fc`` blocks), InputLayer skipped. When an example's shape is known (the
    ``input_shape`` argument or the model's declared input), the model is called
    once on a zero batch and the layers are listed in the order they ran, with
    their output shapes; layers that never ran are listed under ``unused``.
    Otherwise they are listed in the order the model holds them.

    Args:
        model: A Sequential, functional or subclassed ``keras.Model``.
        input_shape: The shape of one example, e.g. ``(28, 28, 1)``; an unbuilt
            (subclassed) model is built by calling it on a zero batch of this shape.

    Returns:
        ``{"class": str, "params": int, "built": bool, "layers": [{"class": str,
        "name": str, "params": int, "output_shape": list | None, "config": {...}}],
        "unused": [str], "compiled": bool, "optimizer": {"class": str,
        "learning_rate": float} | None, "loss": str | None, "metrics": [str]}``.
        ``config`` holds only the settings the layer has among units, activation
        (a name), filters, kernel_size, strides, padding, rate, pool_size (lists
        for sizes). ``loss`` is a name ("mse"), a function's name, a loss
        instance's class name ("CategoricalCrossentropy"), or
        "<class CategoricalCrossentropy>" when the class itself was passed.
    """
    import keras
    import numpy as np

    shape = _input_shape(model, input_shape)
    leaves = _leaf_layers(model, keras)
    traced = None
    if shape is not None:
        traced = _trace(model, leaves, np.zeros((1, *shape), dtype="float32"))
        leaves = _leaf_layers(model, keras)  # a first call may have created layers
    if traced is not None:
        ran = {id(layer) for layer, _ in traced}
        listed = traced
        unused = [layer.name for layer in leaves if id(layer) not in ran]
    else:
        listed = [(layer, None) for layer in leaves]
        unused = []
    layers = []
    for layer, out_shape in listed:
        if out_shape is None:
            try:
                out_shape = [None if d is None else int(d) for d in layer.output.shape]
            except Exception:  # noqa: BLE001 - no symbolic output (subclassed, unbuilt)
                out_shape = None
        layers.append({"class": type(layer).__name__, "name": str(layer.name),
                       "params": _count_params(layer), "output_shape": out_shape,
                       "config": _layer_config(layer)})
    return {
        "class": type(model).__name__,
        "params": _count_params(model),
        "built": bool(getattr(model, "built", False)),
        "layers": layers,
        "unused": unused,
        **_compile_settings(model),
    }


def _compile_settings(model: Any) -> dict[str, Any]:
    """compiled, optimizer, loss and metrics of a model."""
    compiled = bool(getattr(model, "compiled", False))
    optimizer = getattr(model, "optimizer", None) if compiled else None
    described_optimizer = None
    if optimizer is not None:
        try:
            rate = float(_numpy().asarray(optimizer.learning_rate))
        except Exception:  # noqa: BLE001 - an optimizer without a readable rate
            rate = None
        described_optimizer = {"class": type(optimizer).__name__, "learning_rate": rate}
    config: dict[str, Any] = {}
    raw = getattr(model, "_compile_config", None)  # get_compile_config fails on a loss class
    if raw is not None and isinstance(getattr(raw, "config", None), dict):
        config = raw.config
    loss = config.get("loss", getattr(model, "loss", None)) if compiled else None
    if isinstance(loss, (list, tuple)):
        loss_name = ", ".join(str(_name(item)) for item in loss)
    elif isinstance(loss, dict) and "class_name" not in loss:
        loss_name = ", ".join(f"{key}: {_name(item)}" for key, item in loss.items())
    else:
        loss_name = _name(loss)
    metrics = config.get("metrics") if compiled else None
    if isinstance(metrics, dict):
        metrics = [item for value in metrics.values()
                   for item in (value if isinstance(value, (list, tuple)) else [value])]
    elif metrics is not None and not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    names = []
    for metric in metrics or []:
        name = getattr(metric, "name", None) if not isinstance(metric, (str, type)) else None
        names.append(name if isinstance(name, str) else str(_name(metric)))
    return {"compiled": compiled, "optimizer": described_optimizer, "loss": loss_name,
            "metrics": names}


def _numpy() -> Any:
    import numpy

    return numpy


# -- preprocessing ----------------------------------------------------------------------


def _summary(value: Any) -> dict[str, Any] | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    dtype = getattr(value, "dtype", None)
    return {"shape": [None if d is None else int(d) for d in shape],
            "dtype": str(getattr(dtype, "name", dtype))}


def preprocess_kept(fn: Callable[..., Any], images: Any, labels: Any) -> dict[str, Any]:
    """Run the student's ``preprocess(images, labels)`` and keep the result here.

    Args:
        fn: The student's function.
        images: uint8 array (N, 28, 28).
        labels: integer array (N,).

    Returns:
        ``{"data": Kept((x, y)), "x": {"shape": list, "dtype": str} | None,
        "y": {...} | None}``; ``data`` crosses as a handle, to pass to
        `fit_and_predict`.

    Raises:
        TypeError: If ``fn`` does not return a pair.
    """
    result = fn(images, labels)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"preprocess returned {type(result).__name__}; expected a pair (x, y)")
    x, y = result
    return {"data": Kept((x, y)), "x": _summary(x), "y": _summary(y)}


# -- training -------------------------------------------------------------------------


def _unkept(x: Any, y: Any = None) -> tuple[Any, Any]:
    """Arrays from a `Kept` pair (y taken from it when not given) or as given."""
    if isinstance(x, Kept):
        kept_x, kept_y = x.value
        return kept_x, kept_y if y is None else y
    return x, y


def _budget_callback(keras: Any, time_budget_s: float, start: float) -> Any:
    """A callback recording the history and stopping training past the time budget."""

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


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fit_and_predict(model: Any, x_train: Any, y_train: Any, x_test: Any, *, epochs: int,
                    batch_size: int, seed: int, time_budget_s: float) -> dict[str, Any]:
    """Train the student's compiled model under a budget, then predict the test images.

    Seeds Python, numpy and TensorFlow (``keras.utils.set_random_seed``), runs
    ``model.fit(..., verbose=0, shuffle=True)`` with a callback that records each
    epoch's loss and accuracy and sets ``model.stop_training`` as soon as a batch or
    an epoch ends past ``time_budget_s``, then ``model.predict(x_test, verbose=0)``.

    Args:
        model: A compiled Keras model.
        x_train: Training inputs (N, ...), or a `Kept` pair from `preprocess_kept`
            (then ``y_train`` may be None).
        y_train: Training targets (N, 10), or None with a `Kept` x_train.
        x_test: Test inputs (M, ...), or a `Kept` pair (its labels are ignored).
        epochs: Epochs to train at most.
        batch_size: Examples per batch (for fit and predict).
        seed: The seed.
        time_budget_s: Training stops at the first batch end past this many seconds.

    Returns:
        ``{"predictions": float32 array (M, 10) (as the model returns it),
        "history": {"loss": [float | None per epoch], "accuracy": [...]},
        "epochs_done": int (complete epochs), "batches_done": int,
        "stopped_by_budget": bool, "seconds": float (fit + predict),
        "fit_seconds": float, "predict_seconds": float}``.
    """
    import keras
    import numpy as np

    x_train, y_train = _unkept(x_train, y_train)
    x_test, _ = _unkept(x_test)
    keras.utils.set_random_seed(int(seed))
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


def loss_after_one_step(model: Any, x: Any, y: Any) -> dict[str, float | None]:
    """The loss on ``(x, y)`` before and after one ``train_on_batch`` step.

    Args:
        model: A compiled Keras model.
        x: One batch of inputs.
        y: Its targets.

    Returns:
        ``{"before": float | None, "after": float | None}`` (None for a non-finite loss).
    """
    def loss() -> float | None:
        value = model.evaluate(x, y, verbose=0, return_dict=True)
        return _float(value.get("loss") if isinstance(value, dict) else value)

    before = loss()
    model.train_on_batch(x, y)
    return {"before": before, "after": loss()}


# -- GPU memory cap ---------------------------------------------------------------------


def apply_gpu_memory_cap() -> None:
    """Cap TensorFlow's GPU memory at ``$GRADER_GPU_MEMORY_MB`` (called by the runtime's
    server before student code runs, only when the variable is set)."""
    limit = os.environ.get(GPU_MEMORY_ENV)
    if not limit:
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.set_logical_device_configuration(
            gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(limit))])


TOOLS: dict[str, Callable[..., Any]] = {
    "describe_model": describe_model,
    "preprocess_kept": preprocess_kept,
    "fit_and_predict": fit_and_predict,
    "loss_after_one_step": loss_after_one_step,
}
"""Every tool ``student.tool(name, ...)`` may call."""
