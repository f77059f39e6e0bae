"""A Keras model's layers and compile settings against a spec, with readable differences.

``found`` is the ``layers`` list of `grader.evaluator.artifact.describe_model` (plain
dicts built in the grader's process from the model's config, see
`grader.evaluator.spec.describe`); ``expected`` is a list of
`LayerSpec`. Each aspect has its own function, so a suite can make one test per
aspect and a wrong setting costs only its own points:

========================  ======================================================
`compare_kinds`           layer kinds and order (missing, extra, swapped layers)
`compare_units`           Dense units, Conv filters
`compare_geometry`        kernel sizes, strides, padding, pool sizes
`compare_activations`     activations
`compare_dropout`         Dropout rates (with a tolerance)
`compare_params`          the parameter count
`compare_optimizer`, `compare_learning_rate`, `compare_loss`, `compare_metrics`
`compare_layers`          all layer aspects; `compare_compile` all compile aspects
========================  ======================================================

Each returns a list of differences ("layer 3: expected Conv2D(16, 5x5,
padding='same'), found Conv2D(16, 5x5, padding='valid')"); empty means equal.

Behaviour is graded, not spelling (DESIGN.md): ``MaxPool2D`` and ``MaxPooling2D`` are
one kind; an ``Activation``/``ReLU``/``Softmax`` layer right after a layer whose own
activation is linear counts as that layer's ``activation=``; the aspect functions
compare only the layers that line up (by kind), so a missing Dropout does not also
cost the padding points of the layers after it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from babel.lists import format_list

from grader.i18n import Domain, babel_locale, join_items

_, _n = Domain("checks").functions()

__all__ = [
    "DROPOUT_TOLERANCE",
    "LEARNING_RATE_RTOL",
    "LayerSpec",
    "LinedUp",
    "canonical_loss",
    "canonical_metric",
    "compare_activations",
    "compare_activations_only",
    "compare_compile",
    "compare_dropout",
    "compare_geometry",
    "compare_kinds",
    "compare_layers",
    "compare_learning_rate",
    "compare_logits",
    "compare_loss",
    "compare_metrics",
    "compare_optimizer",
    "compare_params",
    "compare_units",
    "fold_activations",
    "line_up",
    "normalise_kind",
    "settings_equal",
]

DROPOUT_TOLERANCE = 1e-6
"""Dropout rates within this of each other are equal (0.25 written as 1/4 included)."""
LEARNING_RATE_RTOL = 1e-5
"""Relative tolerance of learning rates (Keras stores them as float32)."""

KIND_ALIASES = {
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAveragePool2D": "GlobalAveragePooling2D",
    "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
}
"""Other names of the same layer class."""
ACTIVATION_KINDS = {"Activation": None, "ReLU": "relu", "Softmax": "softmax"}
"""Layers that only apply an activation (None: the layer's config names it)."""
LINEAR = ("linear", None)
# Settings shown for a layer, in this order; the first of each kind's list is positional.
_POSITIONAL = {"units": "", "filters": "", "rate": ""}
_GEOMETRY = ("kernel_size", "strides", "padding", "pool_size")


@dataclass(frozen=True)
class LayerSpec:
    """One expected layer; None settings are not checked.

    Attributes:
        kind: The Keras class name, e.g. "Conv2D" ("MaxPool2D" is normalised).
        units: Dense units.
        filters: Convolution filters.
        kernel_size: An int (square) or a tuple.
        strides: An int or a tuple.
        padding: "same" or "valid".
        activation: "relu", "softmax", "linear", ...
        rate: Dropout rate.
        pool_size: An int or a tuple.
    """

    kind: str
    units: int | None = None
    filters: int | None = None
    kernel_size: int | tuple[int, ...] | None = None
    strides: int | tuple[int, ...] | None = None
    padding: str | None = None
    activation: str | None = None
    rate: float | None = None
    pool_size: int | tuple[int, ...] | None = None

    def settings(self) -> dict[str, Any]:
        """The settings this spec checks, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "kind" and getattr(self, f.name) is not None}


def normalise_kind(kind: str) -> str:
    """The canonical class name: "MaxPool2D" -> "MaxPooling2D", "Convolution2D" -> "Conv2D"."""
    return KIND_ALIASES.get(kind, kind)


# -- normalising the found layers ---------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    """A layer from either side, normalised for comparison."""

    kind: str
    settings: Mapping[str, Any]
    params: int | None = None
    output_shape: Any = None  # [None, h, w, c] as described; None for a spec

    def show(self, names: Iterable[str]) -> str:
        return _render(self.kind, {name: self.settings.get(name) for name in names})


def _from_found(layer: Mapping[str, Any]) -> _Layer:
    config = dict(layer.get("config") or {})
    kind = normalise_kind(str(layer.get("class")))
    if kind in ACTIVATION_KINDS and ACTIVATION_KINDS[kind] and "activation" not in config:
        config["activation"] = ACTIVATION_KINDS[kind]
    return _Layer(kind, config, layer.get("params"), layer.get("output_shape"))


def _from_spec(spec: LayerSpec) -> _Layer:
    kind = normalise_kind(spec.kind)
    settings = spec.settings()
    rank = next((int(kind[-2]) for suffix in ("1D", "2D", "3D") if kind.endswith(suffix)), 1)
    for name in ("kernel_size", "strides", "pool_size"):
        if isinstance(settings.get(name), int):  # 5 means 5x5 for a 2D layer, as in Keras
            settings[name] = (settings[name],) * rank
    if kind in ACTIVATION_KINDS and ACTIVATION_KINDS[kind] and "activation" not in settings:
        settings["activation"] = ACTIVATION_KINDS[kind]
    return _Layer(kind, settings)


def fold_activations(layers: Sequence[_Layer]) -> list[_Layer]:
    """Merge each activation-only layer into the layer before it, when that layer's own
    activation is linear: ``Dense(10), Activation('softmax')`` == ``Dense(10, softmax)``."""
    folded: list[_Layer] = []
    for layer in layers:
        previous = folded[-1] if folded else None
        if (layer.kind in ACTIVATION_KINDS and previous is not None
                and "activation" in previous.settings
                and previous.settings["activation"] in LINEAR
                and layer.settings.get("activation") not in LINEAR):
            folded[-1] = replace(previous, settings={
                **previous.settings, "activation": layer.settings.get("activation")})
            continue
        folded.append(layer)
    return folded


def _prepare(found: Sequence[Mapping[str, Any]],
             expected: Sequence[LayerSpec]) -> tuple[list[_Layer], list[_Layer]]:
    return (fold_activations([_from_found(layer) for layer in found]),
            fold_activations([_from_spec(spec) for spec in expected]))


def _render(kind: str, settings: Mapping[str, Any]) -> str:
    """``Conv2D(16, 5x5, padding='same')``: Keras-like, only the given settings."""
    parts = []
    for name in ("units", "filters", "rate"):
        if name in settings:
            parts.append(_show_value(settings[name]))
    if "kernel_size" in settings:
        parts.append(_show_size(settings["kernel_size"]))
    for name in ("strides", "pool_size", "padding", "activation"):
        if name in settings:
            value = settings[name]
            shown = _show_size(value) if name in ("strides", "pool_size") else repr(value)
            parts.append(f"{name}={shown}")
    return f"{kind}({', '.join(parts)})"


def _show_value(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _show_size(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def _size(value: Any, rank: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


# -- alignment ------------------------------------------------------------------------------


def _signature(layer: _Layer) -> tuple[Any, ...]:
    return (layer.kind, layer.settings.get("units"), layer.settings.get("filters"))


def _align(have: list[_Layer], want: list[_Layer]) -> list[tuple[str, list[int], list[int]]]:
    """Line the layers up: blocks (tag, expected indices, found indices).

    Layers are first matched on kind and size (units, filters), so an extra Dense(64)
    is told apart from the Dense(10) after it; the blocks left over are matched again
    on kind alone, so a Dense with the wrong units still lines up with its spec.
    Tags: "equal" (pairs, in order), "replace" (as many on each side, kinds differ),
    "delete" (expected, missing) and "insert" (found, extra); "mixed" blocks are
    reported as missing and extra layers.
    """
    blocks: list[tuple[str, list[int], list[int]]] = []
    outer = difflib.SequenceMatcher(a=[_signature(layer) for layer in want],
                                    b=[_signature(layer) for layer in have], autojunk=False)
    for tag, i1, i2, j1, j2 in outer.get_opcodes():
        if tag == "equal":
            blocks.append(("equal", list(range(i1, i2)), list(range(j1, j2))))
            continue
        inner = difflib.SequenceMatcher(a=[want[i].kind for i in range(i1, i2)],
                                        b=[have[j].kind for j in range(j1, j2)],
                                        autojunk=False)
        for tag2, a1, a2, b1, b2 in inner.get_opcodes():
            expected = list(range(i1 + a1, i1 + a2))
            found = list(range(j1 + b1, j1 + b2))
            if tag2 == "replace" and len(expected) != len(found):
                tag2 = "mixed"
            blocks.append((tag2, expected, found))
    return blocks


def _aligned(have: list[_Layer], want: list[_Layer]) -> list[tuple[int, int]]:
    """Pairs (expected index, found index) of layers that line up by kind."""
    return [pair for tag, expected, found in _align(have, want) if tag == "equal"
            for pair in zip(expected, found, strict=True)]


@dataclass(frozen=True)
class LinedUp:
    """The layers of both sides after activation layers are folded in, lined up by kind.

    Attributes:
        want: The expected layers (``kind``, ``settings``).
        have: The found layers (``kind``, ``settings``, ``params``, ``output_shape``).
        pairs: (expected index, found index) of the layers that line up by kind.
        missing: Expected indices with no found layer.
        extra: Found indices the spec does not have.
    """

    want: tuple[_Layer, ...]
    have: tuple[_Layer, ...]
    pairs: tuple[tuple[int, int], ...]
    missing: tuple[int, ...]
    extra: tuple[int, ...]


def line_up(found: Sequence[Mapping[str, Any]], expected: Sequence[LayerSpec]) -> LinedUp:
    """The alignment every ``compare_*`` function uses, as data (for diagnoses)."""
    have, want = _prepare(found, expected)
    pairs, missing, extra = [], [], []
    for tag, expected_ids, found_ids in _align(have, want):
        if tag == "equal":
            pairs.extend(zip(expected_ids, found_ids, strict=True))
        elif tag == "replace":
            missing.extend(expected_ids)
            extra.extend(found_ids)
        else:
            missing.extend(expected_ids)
            extra.extend(found_ids)
    return LinedUp(tuple(want), tuple(have), tuple(pairs), tuple(missing), tuple(extra))


def settings_equal(name: str, expected: Any, found: Any) -> bool:
    """Whether a found setting equals the expected one, as the ``compare_*`` functions judge."""
    return _equal(name, expected, found)


def compare_kinds(found: Sequence[Mapping[str, Any]], expected: Sequence[LayerSpec]) -> list[str]:
    """Layer kinds and their order: missing, extra and different layers.

    Args:
        found: ``describe_model(...)["layers"]``.
        expected: The spec.

    Returns:
        Differences such as "layer 7: expected Dropout(0.25), missing (before
        Dense(10, activation='softmax'))" or "layer 3: expected Conv2D(16, 5x5),
        found MaxPooling2D(pool_size=2x2)", then one line listing both sequences;
        empty when the kinds match in order.
    """
    have, want = _prepare(found, expected)
    problems = []
    for tag, expected_ids, found_ids in _align(have, want):
        if tag == "equal":
            continue
        if tag == "replace":
            for i, j in zip(expected_ids, found_ids, strict=True):
                problems.append(_("layer {n}: expected {expected}, found {found}", n=i + 1,
                                  expected=want[i].show(want[i].settings),
                                  found=have[j].show(want[i].settings)))
            continue
        next_found = found_ids[-1] + 1 if found_ids else _next_found(have, want, expected_ids)
        for i in expected_ids:
            if next_found is not None and next_found < len(have):
                problems.append(_("layer {n}: expected {expected}, missing (before {before})",
                                  n=i + 1, expected=want[i].show(want[i].settings),
                                  before=have[next_found].show(have[next_found].settings)))
            else:
                problems.append(_("layer {n}: expected {expected}, missing (at the end)",
                                  n=i + 1, expected=want[i].show(want[i].settings)))
        for j in found_ids:
            problems.append(_("found an extra layer {layer} (layer {n} of the model), which "
                              "the expected architecture does not have",
                              layer=have[j].show(have[j].settings), n=j + 1))
    if problems:
        problems.append(_("expected layers: {expected}; found: {found}",
                          expected=join_items(layer.kind for layer in want),
                          found=join_items(layer.kind for layer in have) or _("none")))
    return problems


def _next_found(have: list[_Layer], want: list[_Layer], missing: list[int]) -> int | None:
    """The found layer lined up with the first expected layer after ``missing``."""
    after = missing[-1] + 1 if missing else 0
    for i, j in _aligned(have, want):
        if i >= after:
            return j
    return None


def _compare_settings(found: Sequence[Mapping[str, Any]], expected: Sequence[LayerSpec],
                      names: Sequence[str]) -> list[str]:
    """Differences in the given settings between the layers that line up by kind."""
    have, want = _prepare(found, expected)
    problems = []
    for i, j in _aligned(have, want):
        checked = [name for name in names if name in want[i].settings]
        wrong = [name for name in checked if not _equal(name, want[i].settings[name],
                                                        have[j].settings.get(name))]
        if wrong:
            # Units, filters and kernel size name the layer; unchecked ones are shown as found.
            context = [name for name in _CONTEXT if name not in checked
                       and have[j].settings.get(name) is not None]
            shown = [name for name in dict.fromkeys((*_CONTEXT, *checked))
                     if name in (*context, *checked)]
            expected_layer = _Layer(want[i].kind, {**{name: have[j].settings.get(name)
                                                      for name in context},
                                                   **want[i].settings})
            problems.append(_("layer {n}: expected {expected}, found {found}", n=i + 1,
                              expected=expected_layer.show(shown), found=have[j].show(shown)))
    return problems


_CONTEXT = ("units", "filters", "kernel_size")


def _equal(name: str, expected: Any, found: Any) -> bool:
    try:
        return _equal_values(name, expected, found)
    except (TypeError, ValueError, OverflowError):  # "ｓａｍｅ" as a kernel size, NaN, inf
        return False


def _equal_values(name: str, expected: Any, found: Any) -> bool:
    if name in ("kernel_size", "strides", "pool_size"):
        rank = len(found) if isinstance(found, (list, tuple)) else 1
        return found is not None and _size(expected, rank) == _size(found, rank)
    if name == "rate":
        return found is not None and abs(float(found) - float(expected)) <= DROPOUT_TOLERANCE
    if name == "activation":
        return _activation(found) == _activation(expected)
    if name == "padding":
        return str(found).lower() == str(expected).lower()
    return found == expected


def _activation(name: Any) -> str:
    return "linear" if name is None else str(name).lower()


def compare_units(found: Sequence[Mapping[str, Any]], expected: Sequence[LayerSpec]) -> list[str]:
    """Dense units and convolution filters of the layers that line up."""
    return _compare_settings(found, expected, ("units", "filters"))


def compare_geometry(found: Sequence[Mapping[str, Any]],
                     expected: Sequence[LayerSpec]) -> list[str]:
    """Kernel sizes, strides, padding and pool sizes of the layers that line up."""
    return _compare_settings(found, expected, ("filters", *_GEOMETRY))


def compare_activations(found: Sequence[Mapping[str, Any]],
                        expected: Sequence[LayerSpec]) -> list[str]:
    """Activations of the layers that line up (an Activation layer folded in)."""
    return _compare_settings(found, expected, ("units", "filters", "activation"))


def compare_activations_only(found: Sequence[Mapping[str, Any]],
                             expected: Sequence[LayerSpec]) -> list[str]:
    """Activations only: layers still line up by their sizes (so a missing Dense is told
    apart from the one after it), but other units or filters are not a difference here."""
    return _compare_settings(found, expected, ("activation",))


def compare_dropout(found: Sequence[Mapping[str, Any]],
                    expected: Sequence[LayerSpec]) -> list[str]:
    """Dropout layers: each expected one present, at its rate (within `DROPOUT_TOLERANCE`)."""
    have, want = _prepare(found, expected)
    problems = _compare_settings(found, expected, ("rate",))
    want_dropout = [i for i, layer in enumerate(want) if layer.kind == "Dropout"]
    have_dropout = [j for j, layer in enumerate(have) if layer.kind == "Dropout"]
    matched = {i for i, _ in _aligned(have, want)}
    for i in want_dropout:
        if i not in matched:
            problems.append(_("layer {n}: expected {expected}, missing", n=i + 1,
                              expected=want[i].show(want[i].settings)))
    if len(have_dropout) > len(want_dropout):
        problems.append(_("found {found} Dropout layers; expected {expected}",
                          found=len(have_dropout), expected=len(want_dropout)))
    return problems


def compare_params(found_params: int, expected_params: int) -> list[str]:
    """The total parameter count."""
    if int(found_params) == int(expected_params):
        return []
    return [_("the model has {found} parameters; expected {expected}",
              found=f"{int(found_params):,}", expected=f"{int(expected_params):,}")]


def compare_layers(found: Sequence[Mapping[str, Any]], expected: Sequence[LayerSpec]) -> list[str]:
    """Every layer aspect at once: kinds and order, then each setting of the matched layers."""
    problems = compare_kinds(found, expected)
    seen = set(problems)
    for check in (compare_units, compare_geometry, compare_activations, compare_dropout):
        for problem in check(found, expected):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    return problems


# -- compile settings --------------------------------------------------------------------------

LOSS_ALIASES = {
    "mse": "mean_squared_error", "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence", "kullback_leibler_divergence": "kl_divergence",
    "crossentropy": "categorical_crossentropy",
}
METRIC_ALIASES = {"acc": "accuracy", "categorical_accuracy": "accuracy",
                  "sparse_categorical_accuracy": "accuracy", "binary_accuracy": "accuracy"}


def _snake(name: str) -> str:
    """CamelCase -> snake_case: "MeanSquaredError" -> "mean_squared_error"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def canonical_loss(name: str | None) -> str | None:
    """One name per loss: "mse", "mean_squared_error", "MeanSquaredError" and
    "<class MeanSquaredError>" all give "mean_squared_error".

    A loss class passed instead of an instance trains the same in Keras 3, so it is
    accepted here; where it breaks (saving) `grader.checks.keras_hints` explains it.
    """
    if name is None:
        return None
    text = name.strip()
    match = re.fullmatch(r"<class (\w+)>", text)
    if match:
        text = match.group(1)
    snake = _snake(text) if not text.islower() else text
    return LOSS_ALIASES.get(snake, snake)


def canonical_metric(name: str) -> str:
    """One name per metric: "acc", "accuracy", "CategoricalAccuracy" -> "accuracy"."""
    text = name.strip()
    match = re.fullmatch(r"<class (\w+)>", text)
    if match:
        text = match.group(1)
    snake = _snake(text) if not text.islower() else text
    return METRIC_ALIASES.get(snake, snake)


def compare_optimizer(found: Mapping[str, Any], optimizer: str) -> list[str]:
    """The optimizer's class ("SGD" == "sgd"); ``found`` is ``describe_model``'s dict."""
    if not found.get("compiled"):
        return [_("the model is not compiled; expected `model.compile(optimizer=..., loss=..., "
                  "metrics=[...])` in the build function")]
    described = found.get("optimizer") or {}
    kind = str(described.get("class"))
    if kind.lower() != optimizer.lower():
        return [_("optimizer: expected {expected}, found {found}", expected=optimizer,
                  found=kind)]
    return []


def compare_learning_rate(found: Mapping[str, Any], learning_rate: float | None) -> list[str]:
    """The optimizer's learning rate, within `LEARNING_RATE_RTOL` (None: not checked)."""
    if learning_rate is None:
        return []
    if not found.get("compiled"):
        return [_("the model is not compiled, so it has no learning rate")]
    rate = (found.get("optimizer") or {}).get("learning_rate")
    if rate is None or not math.isclose(float(rate), learning_rate, rel_tol=LEARNING_RATE_RTOL):
        shown = _("none readable") if rate is None else f"{float(rate):g}"
        return [_("learning rate: expected {expected}, found {found}",
                  expected=f"{learning_rate:g}", found=shown)]
    return []


def compare_loss(found: Mapping[str, Any], loss: Iterable[str]) -> list[str]:
    """The loss, against a set of accepted names (compared by `canonical_loss`)."""
    accepted = {canonical_loss(name) for name in loss}
    if not found.get("compiled"):
        return [_("the model is not compiled, so it has no loss")]
    name = found.get("loss")
    if canonical_loss(name) not in accepted:
        listed = format_list(sorted(repr(n) for n in loss), style="or", locale=babel_locale())
        return [_("loss: expected {expected}, found {found}", expected=listed,
                  found=repr(name))]
    return []


def compare_logits(found: Mapping[str, Any]) -> list[str]:
    """A loss with ``from_logits=True`` on a model whose output is already softmax (the
    loss would apply softmax twice); ``found`` is ``describe_model``'s dict."""
    if not found.get("compiled") or not (found.get("loss_args") or {}).get("from_logits"):
        return []
    layers = [layer for layer in found.get("layers") or []
              if layer.get("class") not in ("Dropout", "Flatten", "Reshape")]
    last = layers[-1] if layers else {}
    activation = "softmax" if last.get("class") == "Softmax" else \
        str((last.get("config") or {}).get("activation", "linear")).lower()
    if activation != "softmax":
        return []
    return [_("loss: expected a loss on the softmax outputs (probabilities), found "
              "from_logits=True on a model whose last layer applies softmax")]


def compare_metrics(found: Mapping[str, Any], metrics: Iterable[str]) -> list[str]:
    """Each expected metric is among the model's (extra metrics do not change training)."""
    if not found.get("compiled"):
        return [_("the model is not compiled, so it has no metrics")]
    have = {canonical_metric(name) for name in found.get("metrics") or []}
    missing = [name for name in metrics if canonical_metric(name) not in have]
    if missing:
        return [_("metrics: expected {expected}, found {found}", expected=repr(list(metrics)),
                  found=repr(list(found.get('metrics') or [])))]
    return []


def compare_compile(found: Mapping[str, Any], optimizer: str, learning_rate: float | None,
                    loss: Iterable[str], metrics: Iterable[str]) -> list[str]:
    """Every compile aspect at once (see the single-aspect functions).

    Args:
        found: ``describe_model(...)`` (the whole dict).
        optimizer: The expected optimizer class, e.g. "SGD".
        learning_rate: The expected learning rate, or None to skip.
        loss: Accepted loss names, e.g. {"mse", "mean_squared_error"}.
        metrics: Expected metrics, e.g. ["accuracy"].
    """
    loss, metrics = list(loss), list(metrics)
    if not found.get("compiled"):
        return compare_optimizer(found, optimizer)
    return (compare_optimizer(found, optimizer) + compare_learning_rate(found, learning_rate)
            + compare_loss(found, loss) + compare_metrics(found, metrics))
