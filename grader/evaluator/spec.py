"""A Keras model's config, validated against an allow-list into a plain-data model spec.

Runs in the grader's process. Its input is what a student's model *says* it is
(``model.get_config()`` and ``model.get_compile_config()``, plain data that crossed the
proxy); its output is a `ModelSpec`: a chain of layers from `LAYERS` with only the
arguments listed there, each checked for type and range, plus the compile settings
from `OPTIMIZERS` and `LOSSES`. The evaluator (`grader.evaluator.keras_eval`) rebuilds
the model from a spec with Keras's own constructors and never deserialises anything:
Keras's ``safe_mode`` has been bypassed (CVE-2025-1550, CVE-2025-8747), so a Lambda
layer, a custom class or an unknown argument is refused here, with a message, before
any of it reaches a Keras process.

A spec is JSON-able::

    {"input_shape": [28, 28, 1],
     "layers": [{"class": "Conv2D", "name": "conv2d", "args": {"filters": 8, ...}}, ...],
     "compile": {"optimizer": {"class": "Adam", "args": {"learning_rate": 0.001, ...}},
                 "loss": {"name": "categorical_crossentropy", "args": {...}},
                 "metrics": ["accuracy"]} | None}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.i18n import Domain, lazy

_CATALOG = Domain("checks")
_, _n = _CATALOG.functions()

__all__ = ["LAYERS", "LOSSES", "MAX_PARAMS", "OPTIMIZERS", "ModelRefused", "ModelSpec",
           "chain_spec", "compile_spec", "describe", "param_count", "weight_shapes"]

MAX_PARAMS = 100_000_000
"""Largest model the evaluator trains (AlexNet has 27.7 M parameters; 100 M float32
weights with Adam's two slots take 1.2 GB)."""
MAX_LAYERS = 200
MAX_SIZE = 100_000
MAX_CONFIG_ARRAY = 64
MAX_INPUT_VALUES = 1 << 20
"""Largest input per example (values; AlexNet's 227x227x3 image has 154,587)."""
"""Largest array read as numbers in a config (Keras writes plain lists; a few numbers at most)."""
"""Largest units, filters, kernel or pool size accepted."""

ACTIVATIONS = frozenset((
    "relu", "softmax", "sigmoid", "tanh", "linear", "elu", "selu", "softplus", "softsign",
    "swish", "silu", "gelu", "exponential", "hard_sigmoid", "leaky_relu", "relu6",
    "log_softmax", "mish"))
"""Activation functions a layer may name (Keras's built-in ones)."""


class ModelRefused(AssertionError):
    """The model's config cannot be rebuilt by the grader; the message says why."""


# -- argument validators: each returns the clean value or raises ModelRefused -----------


def _int(low: int, high: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModelRefused(_("`{key}` is {value}; expected an integer from {low} to {high}",
                                 key=key, value=_show(value), low=low, high=f"{high:,}"))
        return int(value)
    return check


def _float(low: float, high: float, *, none: bool = False) -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> float | None:
        if value is None and none:
            return None
        # an int is finite; math.isfinite(10**400) would raise OverflowError in the grader
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (isinstance(value, int) or math.isfinite(value)) \
                or not low <= value <= high:
            raise ModelRefused(_("`{key}` is {value}; expected a number from {low} to {high}",
                                 key=key, value=_show(value), low=f"{low:g}", high=f"{high:g}"))
        return float(value)
    return check


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ModelRefused(_("`{key}` is {value}; expected True or False", key=key,
                             value=_show(value)))
    return value


def _pair(key: str, value: Any) -> list[int]:
    """An int or a pair of ints (kernel sizes, strides, pool sizes) as a pair."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ModelRefused(_("`{key}` is {value}; expected an integer or a pair", key=key,
                             value=_show(value)))
    return [_int(1, MAX_SIZE)(key, item) for item in value]


def _pair_or_none(key: str, value: Any) -> list[int] | None:
    return None if value is None else _pair(key, value)


def _padding(key: str, value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in ("same", "valid"):
        raise ModelRefused(_("`{key}` is {value}; expected 'same' or 'valid'", key=key,
                             value=_show(value)))
    return value.lower()


def activation_name(value: Any) -> str | None:
    """The name of a serialised activation ("relu", a function dict, tf.nn's "relu_v2")."""
    if isinstance(value, Mapping):  # a plain function: {"class_name": "function", "config": name}
        if value.get("class_name") != "function" or value.get("module") not in (
                None, "builtins", "keras.activations", "keras.src.activations.activations"):
            return None
        value = value.get("config")
    if not isinstance(value, str):
        return None
    return re.sub(r"_v\d+$", "", value)  # tf.nn.softmax is softmax_v2


def _activation(key: str, value: Any) -> str:
    name = activation_name(value)
    if name not in ACTIVATIONS:
        raise ModelRefused(_("`{key}` is {value}; expected one of Keras's activations "
                             "({names})", key=key, value=_show(value),
                             names=", ".join(sorted(ACTIVATIONS))))
    return name


def _target_shape(key: str, value: Any) -> list[int]:
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4:
        raise ModelRefused(_("`{key}` is {value}; expected a shape of 1 to 4 sizes", key=key,
                             value=_show(value)))
    return [_int(-1, 10**9)(key, item) for item in value]


def _minus_one(key: str, value: Any) -> int:
    if value != -1 or isinstance(value, bool):
        raise ModelRefused(_("`{key}` is {value}; the grader rebuilds only axis=-1", key=key,
                             value=_show(value)))
    return -1


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_UNITS = _int(1, MAX_SIZE)
_POOL = {"pool_size": _pair, "strides": _pair_or_none, "padding": _padding}

LAYERS: dict[str, dict[str, Callable[[str, Any], Any]]] = {
    "Dense": {"units": _UNITS, "activation": _activation, "use_bias": _bool},
    "Conv2D": {"filters": _UNITS, "kernel_size": _pair, "strides": _pair, "padding": _padding,
               "activation": _activation, "use_bias": _bool},
    "MaxPooling2D": _POOL,
    "AveragePooling2D": _POOL,
    "GlobalMaxPooling2D": {},
    "GlobalAveragePooling2D": {},
    "Flatten": {},
    "Reshape": {"target_shape": _target_shape},
    "Dropout": {"rate": _float(0.0, 0.999)},
    "Activation": {"activation": _activation},
    "ReLU": {"max_value": _float(0.0, 1e6, none=True), "negative_slope": _float(0.0, 1.0),
             "threshold": _float(-1e6, 1e6)},
    "Softmax": {"axis": _minus_one},
}
"""The layer classes the evaluator rebuilds, and the arguments each is rebuilt with."""
KIND_ALIASES = {"MaxPool2D": "MaxPooling2D", "AvgPool2D": "AveragePooling2D",
                "Convolution2D": "Conv2D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
                "GlobalMaxPool2D": "GlobalMaxPooling2D"}
IGNORED = frozenset(("name", "trainable", "dtype", "kernel_initializer", "bias_initializer",
                     "seed", "build_config", "autocast"))
"""Settings read past: the evaluator initialises weights itself (seeded) in float32."""
DEFAULTS: dict[str, tuple[Any, ...]] = {
    "data_format": ("channels_last", None), "dilation_rate": ([1, 1], (1, 1), 1),
    "groups": (1,), "keepdims": (False,), "noise_shape": (None,),
    "kernel_regularizer": (None,), "bias_regularizer": (None,),
    "activity_regularizer": (None,), "kernel_constraint": (None,), "bias_constraint": (None,),
    "quantization_config": (None,), "lora_rank": (None, 0),
}
"""Settings the evaluator does not rebuild: accepted only at these values."""
REFUSED = {
    "Lambda": lazy("a Lambda layer holds Python code, which the grader never runs outside "
                   "your process; write the computation with Keras layers (e.g. Flatten, "
                   "Reshape, Activation) instead"),
    "TFSMLayer": lazy("a TFSMLayer loads a saved model, which the grader does not load"),
}

OPTIMIZERS: dict[str, dict[str, Callable[[str, Any], Any]]] = {
    name: {"learning_rate": _float(0.0, 100.0), **extra} for name, extra in {
        "SGD": {"momentum": _float(0.0, 1.0), "nesterov": _bool},
        "Adam": {"beta_1": _float(0.0, 1.0), "beta_2": _float(0.0, 1.0),
                 "epsilon": _float(0.0, 1.0), "amsgrad": _bool},
        "AdamW": {"beta_1": _float(0.0, 1.0), "beta_2": _float(0.0, 1.0),
                  "epsilon": _float(0.0, 1.0), "amsgrad": _bool},
        "Nadam": {"beta_1": _float(0.0, 1.0), "beta_2": _float(0.0, 1.0),
                  "epsilon": _float(0.0, 1.0)},
        "Adamax": {"beta_1": _float(0.0, 1.0), "beta_2": _float(0.0, 1.0),
                   "epsilon": _float(0.0, 1.0)},
        "RMSprop": {"rho": _float(0.0, 1.0), "momentum": _float(0.0, 1.0),
                    "epsilon": _float(0.0, 1.0), "centered": _bool},
        "Adagrad": {"initial_accumulator_value": _float(0.0, 100.0),
                    "epsilon": _float(0.0, 1.0)},
        "Adadelta": {"rho": _float(0.0, 1.0), "epsilon": _float(0.0, 1.0)},
    }.items()}
"""Optimizer classes the evaluator rebuilds, with their arguments."""
for _name in ("AdamW", "Adam", "SGD", "RMSprop", "Nadam", "Adamax", "Adagrad", "Adadelta"):
    OPTIMIZERS[_name] = {**OPTIMIZERS[_name], "weight_decay": _float(0.0, 1.0, none=True),
                         "clipnorm": _float(0.0, 1e6, none=True),
                         "clipvalue": _float(0.0, 1e6, none=True),
                         "global_clipnorm": _float(0.0, 1e6, none=True)}
OPTIMIZER_IGNORED = frozenset(("name", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                               "loss_scale_factor", "gradient_accumulation_steps"))

LOSSES = {
    "mean_squared_error": "mean_squared_error", "mse": "mean_squared_error",
    "MeanSquaredError": "mean_squared_error",
    "mean_absolute_error": "mean_absolute_error", "mae": "mean_absolute_error",
    "MeanAbsoluteError": "mean_absolute_error",
    "categorical_crossentropy": "categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "binary_crossentropy": "binary_crossentropy", "BinaryCrossentropy": "binary_crossentropy",
    "kl_divergence": "kl_divergence", "KLDivergence": "kl_divergence",
    "categorical_hinge": "categorical_hinge", "CategoricalHinge": "categorical_hinge",
    "hinge": "hinge", "Hinge": "hinge", "squared_hinge": "squared_hinge",
    "SquaredHinge": "squared_hinge", "poisson": "poisson", "Poisson": "poisson",
}
"""Loss names (strings, functions and classes) and the Keras function each is."""
LOSS_ARGS = {"from_logits": _bool, "label_smoothing": _float(0.0, 1.0)}


@dataclass(frozen=True)
class ModelSpec:
    """A validated model: a chain of allowed layers and its compile settings.

    Attributes:
        input_shape: The shape of one example, e.g. (28, 28, 1).
        layers: ``({"class": str, "name": str, "args": {...}, "implicit": bool}, ...)``.
        compile: ``{"optimizer": {"class", "args"}, "loss": {"name", "args"}, "metrics":
            [str]}``, or None when the model is not compiled.
        model_class: The model's class as the config names it ("Sequential", ...).
        refused: Why layers or settings were not accepted, in a spec read with
            ``strict=False`` (for describing only; such a spec is never trained).
    """

    input_shape: tuple[int, ...]
    layers: tuple[Mapping[str, Any], ...]
    compile: Mapping[str, Any] | None
    model_class: str = "Sequential"
    refused: tuple[str, ...] = ()

    def as_plain(self) -> dict[str, Any]:
        """The spec as the evaluator receives it (JSON-able data)."""
        return {"input_shape": list(self.input_shape), "layers": [dict(layer) for layer in
                                                                  self.layers],
                "compile": None if self.compile is None else dict(self.compile)}


# -- layers --------------------------------------------------------------------------------


def _kind(entry: Mapping[str, Any], where: str) -> str:
    kind = entry.get("class_name")
    if not isinstance(kind, str):
        raise ModelRefused(_("{where}: the config names no layer class", where=where))
    module = entry.get("module")
    registered = entry.get("registered_name")
    if kind in REFUSED:
        raise ModelRefused(f"{where}: {_CATALOG.gettext(REFUSED[kind])}")
    custom = (registered not in (None, kind)) or (
        module is not None and not (isinstance(module, str) and module.startswith("keras")))
    if custom:
        raise ModelRefused(_("{where}: {kind} is a custom class (module {module}); the grader "
                             "rebuilds models only from Keras's own layers: {names}",
                             where=where, kind=_show(kind), module=_show(module),
                             names=", ".join(sorted(LAYERS))))
    return KIND_ALIASES.get(kind, kind)


def layer_spec(kind: str, config: Any, where: str) -> dict[str, Any]:
    """One allowed layer from its class name and ``get_config()``.

    Args:
        kind: The Keras class name ("MaxPool2D" is read as "MaxPooling2D").
        config: The layer's config (a dict of plain data).
        where: How the message names the layer, e.g. "layer 3 (conv2d_1)".

    Returns:
        ``{"class": kind, "name": str, "args": {...}, "trainable": bool}``.

    Raises:
        ModelRefused: For a refused or unknown class, or an argument outside the allow-list.
    """
    kind = KIND_ALIASES.get(kind, kind)
    if kind in REFUSED:
        raise ModelRefused(f"{where}: {_CATALOG.gettext(REFUSED[kind])}")
    if kind not in LAYERS:
        raise ModelRefused(_("{where}: the grader does not rebuild {kind} layers; it rebuilds "
                             "{names}", where=where, kind=_show(kind),
                             names=", ".join(sorted(LAYERS))))
    if not isinstance(config, Mapping):
        raise ModelRefused(_("{where}: its config is {type}; expected a dict", where=where,
                             type=type(config).__name__))
    allowed = LAYERS[kind]
    args: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise ModelRefused(_("{where}: its config has a key that is not a string",
                                 where=where))
        if key in allowed:
            try:
                args[key] = allowed[key](key, value)
            except ModelRefused as exc:
                raise ModelRefused(f"{where} ({kind}): {exc}") from None
        elif key in DEFAULTS:
            if not any(_same(value, default) for default in DEFAULTS[key]):
                raise ModelRefused(_("{where} ({kind}): `{key}` is {value}; the grader "
                                     "rebuilds only {default}", where=where, kind=kind, key=key,
                                     value=_show(value), default=_show(DEFAULTS[key][0])))
        elif key not in IGNORED and value not in (None, False):
            raise ModelRefused(_("{where} ({kind}): the setting `{key}` ({value}) is not one "
                                 "the grader rebuilds", where=where, kind=kind, key=key,
                                 value=_show(value)))
    trainable = config.get("trainable", True)
    name = config.get("name")
    return {"class": kind, "name": name if isinstance(name, str) else kind.lower(),
            "args": args, "trainable": trainable if isinstance(trainable, bool) else True}


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return type(value) is type(default) and value == default


def _input_shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not 2 <= len(value) <= 4 or not (
            value[0] is None or isinstance(value[0], int)):  # a batch size, or None
        raise ModelRefused(_("{where}: the input shape {value} is not a batch of examples of a "
                             "fixed shape", where=where, value=_show(value)))
    return tuple(_int(1, MAX_SIZE)("input shape", d) for d in value[1:])


def _entries(config: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    layers = config.get("layers")
    if not isinstance(layers, list) or not all(isinstance(e, Mapping) for e in layers):
        raise ModelRefused(_("{where}: the config lists no layers", where=where))
    if len(layers) > MAX_LAYERS:
        raise ModelRefused(_("{where}: {n} layers; the grader rebuilds at most {most}",
                             where=where, n=len(layers), most=MAX_LAYERS))
    return layers


def _history(node: Any) -> str | None:
    """The name of the layer a functional node's single tensor argument comes from."""
    if not isinstance(node, Mapping) or not isinstance(node.get("args"), list) \
            or len(node["args"]) != 1:
        return None
    kwargs = node.get("kwargs") or {}
    # Keras records Dropout's `training` flag; the evaluator's fit and predict set it
    if not isinstance(kwargs, Mapping) or any(
            key not in ("training", "mask") or value not in (None, True, False)
            for key, value in kwargs.items()):
        return None
    tensor = node["args"][0]
    if not isinstance(tensor, Mapping) or tensor.get("class_name") != "__keras_tensor__":
        return None
    history = (tensor.get("config") or {}).get("keras_history")
    if not isinstance(history, list) or not history or not isinstance(history[0], str):
        return None
    return history[0]


def _check_chain(entries: list[Mapping[str, Any]], config: Mapping[str, Any],
                 where: str) -> None:
    """A functional model's layers each take the previous one's output, and nothing else."""
    for previous, entry in zip(entries, entries[1:], strict=False):
        nodes = entry.get("inbound_nodes")
        if not isinstance(nodes, list) or len(nodes) != 1 or \
                _history(nodes[0]) != previous.get("name"):
            raise ModelRefused(_("{where}: layer {name} does not take exactly the output of "
                                 "{previous}; the grader rebuilds functional models that are a "
                                 "single chain of layers", where=where,
                                 name=_show(entry.get('name')),
                                 previous=_show(previous.get('name'))))
    outputs = config.get("output_layers")
    last = entries[-1].get("name") if entries else None
    if outputs not in ([last, 0, 0], [[last, 0, 0]]):
        raise ModelRefused(_("{where}: the model's output is not its last layer's",
                             where=where))


def _unchecked(entry: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """A layer outside the allow-list, described by its class and plain settings only."""
    kind = entry.get("class_name")
    kind = KIND_ALIASES.get(kind, kind) if isinstance(kind, str) else "?"
    config = entry.get("config") if isinstance(entry.get("config"), Mapping) else {}
    args: dict[str, Any] = {}
    for key in SETTINGS:
        value = config.get(key)
        if key == "activation":
            value = activation_name(value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) or (
                isinstance(value, list) and all(isinstance(v, int) for v in value)):
            args[key] = value
    name = config.get("name")
    return {"class": kind[:100], "name": name if isinstance(name, str) else kind[:100],
            "args": args, "trainable": True, "refused": reason}


def _flatten(config: Mapping[str, Any], where: str, found: list[dict[str, Any]],
             shapes: list[tuple[int, ...]], functional: bool, strict: bool = True) -> None:
    """Append the leaf layers of a Sequential or functional config, depth first.

    With ``strict=False`` a layer outside the allow-list is kept as `_unchecked` (and a
    functional model is read in its config's order), so that it can still be described.
    """
    entries = _entries(config, where)
    if functional and strict:
        _check_chain(entries, config, where)
    for index, entry in enumerate(entries, 1):
        try:
            _flatten_entry(entry, index, where, found, shapes, strict)
        except ModelRefused as exc:
            if strict:
                raise
            found.append(_unchecked(entry, str(exc)))


def _flatten_entry(entry: Mapping[str, Any], index: int, where: str,
                   found: list[dict[str, Any]], shapes: list[tuple[int, ...]],
                   strict: bool) -> None:
    """One entry of a config's layer list: an input, a nested model or a leaf layer."""
    here = _("{where}, layer {index}", where=where, index=index)
    kind = _kind(entry, here)
    inner = entry.get("config")
    if kind == "InputLayer":
        if not isinstance(inner, Mapping):
            raise ModelRefused(_("{where}: an input layer without a config", where=here))
        shape = inner.get("batch_shape", inner.get("batch_input_shape"))
        shapes.append(_input_shape(shape, here))
        return
    if kind in ("Sequential", "Functional"):
        if not isinstance(inner, Mapping):
            raise ModelRefused(_("{where}: a nested model without a config", where=here))
        _flatten(inner, f"{here} ({kind})", found, shapes,
                 kind == "Functional", strict)
        return
    build = entry.get("build_config")
    if isinstance(build, Mapping) and isinstance(build.get("input_shape"), (list, tuple)):
        try:
            shapes.append(_input_shape(build["input_shape"], where))
        except ModelRefused:
            pass  # a build shape is only a hint; an unusable one is read past
    name = inner.get("name") if isinstance(inner, Mapping) else None
    found.append(layer_spec(kind, inner, _("layer {index} ({name})", index=len(found) + 1,
                                           name=_show(name))))


def chain_spec(config: Any, *, model_class: str = "Sequential",
               input_shape: Sequence[int] | None = None,
               compile_config: Any = None, implicit_flatten: bool = False,
               strict: bool = True) -> ModelSpec:
    """A `ModelSpec` from a Sequential or functional model's ``get_config()``.

    Args:
        config: ``model.get_config()``; for a model built of blocks (the subclassed
            AlexNet) the caller passes ``{"layers": [...]}`` of its blocks' entries.
        model_class: "Sequential", "Functional" or the subclass's name (messages only).
        input_shape: The shape of one example when the config does not say it.
        compile_config: ``model.get_compile_config()`` ({} or None: not compiled).
        implicit_flatten: Insert a Flatten where a Dense follows an image-shaped output
            (a subclassed model's ``call`` may flatten with ``tf.reshape``; the equivalence
            check of `grader.evaluator.artifact` confirms it).
        strict: False reads past what the allow-list refuses (listed in ``refused``), to
            describe the model for architecture checks; such a spec is never trained.

    Returns:
        The spec.

    Raises:
        ModelRefused: Anything outside the allow-list, or shapes that do not fit.
    """
    if not isinstance(config, Mapping):
        raise ModelRefused(_("the model's config is {type}; expected a dict",
                             type=type(config).__name__))
    config = _as_lists(config)
    found: list[dict[str, Any]] = []
    shapes: list[tuple[int, ...]] = []
    _flatten(config, _("the model"), found, shapes,
             functional=model_class == "Functional" or "output_layers" in config,
             strict=strict)
    shape = tuple(input_shape) if input_shape is not None else (shapes[0] if shapes else None)
    if shape is None:
        raise ModelRefused(_("the model's config does not say the shape of its input; build it "
                             "with keras.Input(shape=...) as its first layer"))
    if math.prod(shape) > MAX_INPUT_VALUES:
        # the grader draws random inputs of this shape (the equivalence check): a claimed
        # 20000x20000 image made it allocate 18 GB in its own process
        raise ModelRefused(_("the model's input has shape {shape} ({values} values per "
                             "example); the grader rebuilds models whose inputs have at most "
                             "{most}", shape=tuple(shape), values=f"{math.prod(shape):,}",
                             most=f"{MAX_INPUT_VALUES:,}"))
    if not found:
        raise ModelRefused(_("the model has no layers"))
    if implicit_flatten:
        found = _with_flatten(found, shape)
    refused = [layer["refused"] for layer in found if layer.get("refused")]
    compile_config = _as_lists(compile_config)  # described below even when refused
    try:
        settings = compile_spec(compile_config)
    except ModelRefused as exc:
        if strict:
            raise
        settings = _described_compile(compile_config)
        refused.append(str(exc))
    spec = ModelSpec(tuple(int(d) for d in shape), tuple(found), settings, model_class,
                     tuple(refused))
    if not strict:
        return spec
    total = param_count(spec)
    if total > MAX_PARAMS:
        raise ModelRefused(_("the model has {total} parameters; the grader trains models of at "
                             "most {most}", total=f"{total:,}", most=f"{MAX_PARAMS:,}"))
    return spec


def _as_lists(value: Any, depth: int = 0) -> Any:
    """Tuples as lists, all the way down (a config that crossed the proxy keeps tuples)."""
    if depth > 64:
        raise ModelRefused(_("the model's config is nested too deeply"))
    if isinstance(value, (list, tuple)):
        return [_as_lists(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return {key: _as_lists(item, depth + 1) for key, item in value.items()}
    if isinstance(value, np.ndarray | np.generic):
        # an array in a config (a get_config that returns one) is read as the plain
        # numbers it holds; `value in (None, False)` on an array would raise in the grader
        if value.size > MAX_CONFIG_ARRAY:
            raise ModelRefused(_("the model's config holds an array of shape {shape}; a Keras "
                                 "config holds only numbers, strings, lists and dicts",
                                 shape=value.shape))
        return _as_lists(value.tolist(), depth + 1)
    return value


def _with_flatten(layers: list[dict[str, Any]], shape: tuple[int, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for layer in layers:
        if layer["class"] == "Dense" and len(shape) > 1:
            out.append({"class": "Flatten", "name": "flatten (in call)", "args": {},
                        "trainable": True, "implicit": True})
            shape = (math.prod(shape),)
        out.append(layer)
        shape, _weights = _output(layer, shape, len(out))
    return out


# -- compile settings ---------------------------------------------------------------------


def _optimizer(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"class_name": {"sgd": "SGD", "rmsprop": "RMSprop"}.get(value.lower(),
                                                                        value.capitalize()),
                 "config": {}}
    if not isinstance(value, Mapping):
        raise ModelRefused(_("optimizer: {value} is not a Keras optimizer", value=_show(value)))
    kind = value.get("class_name")
    # a list or dict as the class name must be refused, not raise TypeError (unhashable)
    if not isinstance(kind, str) or kind not in OPTIMIZERS \
            or value.get("registered_name") not in (None, kind):
        raise ModelRefused(_("optimizer: the grader trains with {names}; found {kind}",
                             names=", ".join(sorted(OPTIMIZERS)), kind=_show(kind)))
    config = value.get("config") or {}
    if not isinstance(config, Mapping):
        raise ModelRefused(_("optimizer: its config is not a dict"))
    if isinstance(config.get("learning_rate"), Mapping):
        raise ModelRefused(_("optimizer: a learning-rate schedule is not something the grader "
                             "rebuilds; pass a number as learning_rate"))
    args = {}
    for key, item in config.items():
        if key in OPTIMIZERS[kind]:
            try:
                args[key] = OPTIMIZERS[kind][key](key, item)
            except ModelRefused as exc:
                raise ModelRefused(f"optimizer {kind}: {exc}") from None
        elif key not in OPTIMIZER_IGNORED and item not in (None, False):
            raise ModelRefused(_("optimizer {kind}: the setting `{key}` ({value}) is not one "
                                 "the grader rebuilds", kind=kind, key=key, value=_show(item)))
    return {"class": kind, "args": args}


def _loss(value: Any) -> dict[str, Any]:
    args: dict[str, Any] = {}
    name = value
    if isinstance(value, Mapping):
        name = value.get("config") if value.get("class_name") == "function" \
            else value.get("class_name")
        config = value.get("config") if isinstance(value.get("config"), Mapping) else {}
        for key, item in config.items():
            if key in LOSS_ARGS:
                args[key] = LOSS_ARGS[key](key, item)
        if value.get("registered_name") not in (None, "function", name):
            name = None
    if not isinstance(name, str) or name not in LOSSES:
        raise ModelRefused(_("loss: the grader trains with Keras's own losses ({names}); found "
                             "{value}", names=", ".join(sorted(set(LOSSES.values()))),
                             value=_show(value)))
    passed_class = isinstance(value, Mapping) and value.get("passed_class") is True
    return {"name": LOSSES[name], "shown": f"<class {name}>" if passed_class else name,
            "args": args}


def _metric_name(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        config = value.get("config")
        if isinstance(config, Mapping) and isinstance(config.get("name"), str):
            return config["name"]
        if isinstance(config, str):
            return config
        if isinstance(value.get("class_name"), str):
            return value["class_name"]
    return _show(value)


def _described_compile(config: Any) -> dict[str, Any] | None:
    """Compile settings outside the allow-list, by name only (for describing)."""
    if not isinstance(config, Mapping) or config.get("optimizer") is None:
        return None
    optimizer = config["optimizer"]
    kind = optimizer.get("class_name") if isinstance(optimizer, Mapping) else optimizer
    rate = (optimizer.get("config") or {}).get("learning_rate") \
        if isinstance(optimizer, Mapping) and isinstance(optimizer.get("config"), Mapping) \
        else None
    loss = config.get("loss")
    shown = loss if isinstance(loss, str) else (
        _metric_name(loss) if isinstance(loss, Mapping) else _show(loss))
    metrics = config.get("metrics") or []
    return {"optimizer": {"class": str(kind)[:100],
                          "args": {"learning_rate": rate} if isinstance(rate, float) else {}},
            "loss": {"name": None, "shown": str(shown)[:100], "args": {}},
            "metrics": [_metric_name(m) for m in (metrics if isinstance(metrics, list)
                                                  else [metrics])[:20]]}


def compile_spec(config: Any) -> dict[str, Any] | None:
    """The compile settings from ``model.get_compile_config()`` (None: not compiled)."""
    config = _as_lists(config)
    if config is None or config == {}:
        return None
    if not isinstance(config, Mapping):
        raise ModelRefused(_("the compile config is {type}; expected a dict",
                             type=type(config).__name__))
    if config.get("optimizer") is None:
        return None
    loss = config.get("loss")
    if isinstance(loss, (list, dict)) and not (isinstance(loss, Mapping)
                                               and "class_name" in loss):
        raise ModelRefused(_("loss: one loss for the one output is expected; found several"))
    metrics = config.get("metrics") or []
    if isinstance(metrics, (str, Mapping)):
        metrics = [metrics]
    if not isinstance(metrics, list):
        raise ModelRefused(_("metrics: {value} is not a list", value=_show(metrics)))
    return {"optimizer": _optimizer(config["optimizer"]), "loss": _loss(loss),
            "metrics": [_metric_name(metric) for metric in metrics[:20]]}


# -- shapes and parameters ------------------------------------------------------------------


def _same_or_valid(size: int, window: int, stride: int, padding: str) -> int:
    return -(-size // stride) if padding == "same" else (size - window) // stride + 1


def _output(layer: Mapping[str, Any], shape: tuple[int, ...],
            index: int) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """A layer's output shape and weight shapes for an input of ``shape`` (one example)."""
    kind, args = layer["class"], layer["args"]
    where = _("layer {index} ({name})", index=index, name=kind)
    weights: list[tuple[int, ...]] = []
    if kind == "Dense":
        units = args.get("units", 1)
        weights = [(shape[-1], units)] + ([(units,)] if args.get("use_bias", True) else [])
        out = (*shape[:-1], units)
    elif kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        if len(shape) != 3:
            raise ModelRefused(_("{where} takes images (height, width, channels); its input "
                                 "has shape {shape}", where=where, shape=shape))
        window = args.get("kernel_size") or args.get("pool_size") or [2, 2]
        strides = args.get("strides") or (window if kind != "Conv2D" else [1, 1])
        padding = args.get("padding", "valid")
        size = [_same_or_valid(shape[i], window[i], strides[i], padding) for i in (0, 1)]
        channels = shape[2]
        if kind == "Conv2D":
            channels = args.get("filters", 1)
            weights = [(*window, shape[2], channels)] + (
                [(channels,)] if args.get("use_bias", True) else [])
        out = (*size, channels)
    elif kind in ("GlobalMaxPooling2D", "GlobalAveragePooling2D"):
        if len(shape) != 3:
            raise ModelRefused(_("{where} takes images; its input has shape {shape}",
                                 where=where, shape=shape))
        out = (shape[2],)
    elif kind == "Flatten":
        out = (math.prod(shape),)
    elif kind == "Reshape":
        target = list(args.get("target_shape", []))
        known = math.prod(d for d in target if d != -1)
        if target.count(-1) > 1 or known <= 0 or math.prod(shape) % known:
            raise ModelRefused(_("{where}: cannot reshape {shape} to {target}", where=where,
                                 shape=shape, target=tuple(target)))
        out = tuple(math.prod(shape) // known if d == -1 else d for d in target)
        if math.prod(out) != math.prod(shape):
            raise ModelRefused(_("{where}: cannot reshape {shape} to {target}", where=where,
                                 shape=shape, target=tuple(target)))
    else:  # Dropout and the activation layers keep the shape
        out = shape
    if any(d < 1 for d in out):
        raise ModelRefused(_("{where}: its output would be empty (shape {out}) for an input of "
                             "shape {shape}", where=where, out=out, shape=shape))
    return out, weights


def shapes(spec: ModelSpec) -> list[tuple[Any, list[tuple[int, ...]]]]:
    """Each layer's output shape and weight shapes, in order.

    In a spec read with ``strict=False``, shapes after a refused layer (or one that does
    not fit) are None.
    """
    shape: Any = spec.input_shape
    found: list[tuple[Any, list[tuple[int, ...]]]] = []
    for index, layer in enumerate(spec.layers, 1):
        if shape is None or layer.get("refused"):
            shape = None
            found.append((None, []))
            continue
        try:
            shape, weights = _output(layer, shape, index)
        except ModelRefused:
            if not spec.refused:
                raise
            shape, weights = None, []
        found.append((shape, weights))
    return found


def weight_shapes(spec: ModelSpec) -> list[tuple[int, ...]]:
    """Every weight array's shape, in Keras's order (kernel, bias; layer by layer)."""
    return [w for _, weights in shapes(spec) for w in weights]


def param_count(spec: ModelSpec) -> int:
    """The model's parameter count, computed from its spec."""
    return sum(math.prod(w) for w in weight_shapes(spec))


# -- the description architecture checks read -------------------------------------------------

SETTINGS = ("units", "activation", "filters", "kernel_size", "strides", "padding", "rate",
            "pool_size")
ACTIVATION_LAYERS = {"ReLU": "relu", "Softmax": "softmax"}


def describe(spec: ModelSpec) -> dict[str, Any]:
    """The spec as `grader.checks.architecture` reads it.

    Returns:
        ``{"class": str, "params": int, "built": True, "input_shape": [None, ...],
        "layers": [{"class", "name", "params", "output_shape": [None, ...], "config":
        {...}}], "unused": [], "compiled": bool, "optimizer": {"class", "learning_rate"} |
        None, "loss": str | None, "loss_args": {"from_logits": bool, ...}, "metrics":
        [str]}``; a layer's ``config`` holds the settings
        among `SETTINGS` it has (Keras's defaults filled in, sizes as lists).
    """
    layers = []
    for layer, (out, weights) in zip(spec.layers, shapes(spec), strict=True):
        if layer.get("implicit"):
            continue  # a flattening written in `call`, not a layer the student declared
        args = dict(layer["args"])
        kind = layer["class"]
        if kind == "Conv2D":
            args.setdefault("strides", [1, 1])
            args.setdefault("padding", "valid")
            args.setdefault("activation", "linear")
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            args["pool_size"] = args.get("pool_size") or [2, 2]
            args["strides"] = args.get("strides") or args["pool_size"]
            args.setdefault("padding", "valid")
        elif kind == "Dense":
            args.setdefault("activation", "linear")
        elif kind in ACTIVATION_LAYERS:
            args["activation"] = ACTIVATION_LAYERS[kind]
        layers.append({"class": kind, "name": layer["name"],
                       "params": sum(math.prod(w) for w in weights),
                       "output_shape": None if out is None else [None, *out],
                       "config": {key: args[key] for key in SETTINGS if key in args},
                       **({"refused": True} if layer.get("refused") else {})})
    compiled = spec.compile is not None
    optimizer = loss = None
    loss_args: dict[str, Any] = {}
    metrics: list[str] = []
    if spec.compile is not None:
        loss_args = dict(spec.compile["loss"].get("args") or {})  # from_logits, label_smoothing
        chosen = spec.compile["optimizer"]
        optimizer = {"class": chosen["class"],
                     "learning_rate": chosen["args"].get("learning_rate",
                                                         DEFAULT_RATES.get(chosen["class"]))}
        loss = spec.compile["loss"]["shown"]
        metrics = list(spec.compile["metrics"])
    return {"class": spec.model_class, "params": param_count(spec), "built": True,
            "input_shape": [None, *spec.input_shape], "layers": layers, "unused": [],
            "compiled": compiled, "optimizer": optimizer, "loss": loss, "loss_args": loss_args,
            "metrics": metrics}


DEFAULT_RATES = {"SGD": 0.01, "Adam": 0.001, "AdamW": 0.001, "Nadam": 0.001, "Adamax": 0.001,
                 "RMSprop": 0.001, "Adagrad": 0.001, "Adadelta": 0.001}
"""Keras's default learning rates (an optimizer given as a string)."""
