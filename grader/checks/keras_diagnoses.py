"""Diagnoses for the Keras assignments: the known mistake a wrong model matches, as data.

Everything here runs in the grader's process on plain data the suites already read: a
model's description (`grader.evaluator.artifact.describe_model`: layers with their
settings and output shapes, compile settings), the expected `LayerSpec` list, arrays a
student's ``preprocess`` returned, and the student's own source (parsed, never run) for
the Keras 2 spellings that Keras 3 rejects. No message text is read. Each diagnosis is a
`grader.checks.diagnose.Mistake` whose sentence says, in the lecture's terms, what the
student most likely did::

    problems = compare_geometry(found, expected)
    require(problems, "`build_cnn()`: padding",
            lambda: layer_mistake(found, expected, ("padding",), model="CNN"))

`require` raises `Diagnosed` (the mistake's id travels as data to the outcome) when the
diagnosis names a mistake, a plain ``AssertionError`` otherwise. Diagnosing never fails
a check on its own and never raises: a hostile config (a NaN kernel size, a string where
a number belongs, a unicode name) gets the plain verdict of its check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from babel.lists import format_list

from grader.checks.architecture import (
    LayerSpec,
    canonical_loss,
    canonical_metric,
    line_up,
    settings_equal,
)
from grader.checks.diagnose import Diagnosed, Mistake
from grader.checks.keras_hints import MISSING_SOFTMAX
from grader.i18n import Domain, babel_locale, lazy

_CATALOG = Domain("checks")
_, _n = _CATALOG.functions()

__all__ = ["DEFAULT_RATES", "compile_mistake", "diagnosing", "last_activation", "layer_mistake",
           "logits_loss_failure", "preprocess_mistake", "require", "shuffle_mistake"]

DEFAULT_RATES = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001, "adamw": 0.001,
                 "nadam": 0.001, "adamax": 0.001, "adagrad": 0.001, "adadelta": 0.001}
"""Keras's default learning rates: a rate equal to one of these was most likely left out."""
# A layer's place among the layers of its kind, one whole phrase per place ("second Conv2D").
_ORDINALS = (lazy("first {kind}"), lazy("second {kind}"), lazy("third {kind}"),
             lazy("fourth {kind}"), lazy("fifth {kind}"), lazy("sixth {kind}"),
             lazy("seventh {kind}"), lazy("eighth {kind}"))
_SHOWN = 40  # characters of a student's value shown in a sentence


def require(problems: Sequence[str], what: str,
            diagnose: Callable[[], Mistake | None] | None = None) -> None:
    """Fail with the differences; name the mistake when ``diagnose`` finds one.

    Raises:
        Diagnosed: ``problems`` is not empty and ``diagnose()`` returned a mistake.
        AssertionError: ``problems`` is not empty otherwise.
    """
    if not problems:
        return
    message = f"{what}:\n" + "\n".join(problems)
    mistake = _safely(diagnose) if diagnose is not None else None
    if mistake is not None:
        raise Diagnosed(message, mistake)
    raise AssertionError(message)


def _safely(diagnose: Callable[[], Mistake | None]) -> Mistake | None:
    """The diagnosis, or None when the student's values make it impossible to compute."""
    try:
        mistake = diagnose()
    except Exception:  # noqa: BLE001 - hostile values: the check's plain verdict stands
        return None
    return mistake if isinstance(mistake, Mistake) else None


def _mistake(mistake_id: str, sentence: str) -> Mistake:
    return Mistake(mistake_id, sentence, lambda: None)


def _text(value: Any) -> str:
    """A student's value in a sentence: short, printable."""
    shown = repr(value) if isinstance(value, str) else str(value)
    shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
    return shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "..."


def _size(value: Any) -> str:
    """(5, 5) -> "5x5"; anything else as text."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return "x".join(str(v) for v in value)
    return _text(value)


def _spatial(shape: Any) -> str | None:
    """[None, 5, 5, 16] -> "5x5" (the feature map's height and width)."""
    if isinstance(shape, (list, tuple)) and len(shape) == 4 and \
            all(isinstance(v, int) for v in shape[1:3]):
        return f"{shape[1]}x{shape[2]}"
    return None


def _ordinal(have: Sequence[Any], j: int) -> str:
    """"second Conv2D": the found layer's place among the layers of its kind."""
    kind = have[j].kind
    n = sum(1 for layer in have[: j + 1] if layer.kind == kind)
    if n <= len(_ORDINALS):
        return _CATALOG.gettext(_ORDINALS[n - 1], kind=kind)
    return _("{n}th {kind}", n=n, kind=kind)


def _model(model: str) -> str:
    """How a sentence names the lecture's model: its name, or "model" in the reader's words."""
    return _("model") if model == "model" else model


def _same_output(in_shape: Any, strides: Any) -> str | None:
    """The feature map 'same' padding gives: ceil(size / stride) in each direction."""
    if not (isinstance(in_shape, (list, tuple)) and len(in_shape) == 4):
        return None
    if not (isinstance(strides, (list, tuple)) and len(strides) == 2):
        return None
    h, w, (sh, sw) = in_shape[1], in_shape[2], strides
    if not all(isinstance(v, int) and v > 0 for v in (h, w, sh, sw)):
        return None
    return f"{math.ceil(h / sh)}x{math.ceil(w / sw)}"


# -- layers --------------------------------------------------------------------------------


def layer_mistake(found: Sequence[Mapping[str, Any]], expected: Sequence[LayerSpec],
                  names: Sequence[str], *, model: str = "model",
                  input_shape: Any = None) -> Mistake | None:
    """The known mistake behind a difference in the named settings (or in the kinds).

    Args:
        found: ``describe_model(...)["layers"]`` (output shapes included).
        expected: The spec the check compares with.
        names: What the check compares: "kinds", or settings among "units", "filters",
            "kernel_size", "strides", "pool_size", "padding", "activation", "rate".
        model: How the lecture names the model ("CNN", "AlexNet", "Sequential MLP").
        input_shape: The model's input as described (``[None, 28, 28, 1]``), for the
            feature-map size of a first layer.

    Returns:
        The first matching mistake in layer order, or None.
    """
    if any(layer.get("refused") for layer in found):
        return None  # settings the grader could not read: the check's plain verdict stands
    lined = line_up(found, expected)
    want, have = lined.want, lined.have
    if "kinds" in names or "rate" in names:
        mistake = _kind_mistake(lined, model, dropout_only="kinds" not in names)
        if mistake is not None:
            return mistake
    for i, j in lined.pairs:
        for name in names:
            if name not in want[i].settings or settings_equal(
                    name, want[i].settings[name], have[j].settings.get(name)):
                continue
            previous = have[j - 1].output_shape if j > 0 else input_shape
            mistake = _setting_mistake(name, want, have, i, j, model, previous,
                                       last=i == len(want) - 1)
            if mistake is not None:
                return mistake
    return None


def _kind_mistake(lined, model: str, *, dropout_only: bool) -> Mistake | None:
    want, have = lined.want, lined.have
    model = _model(model)
    missing = [want[i] for i in lined.missing]
    extra = [have[j] for j in lined.extra]
    if not dropout_only and any(layer.kind == "Flatten" for layer in missing) and not any(
            layer.kind in ("Flatten", "Reshape", "GlobalAveragePooling2D",
                           "GlobalMaxPooling2D") for layer in extra):
        return _mistake(
            "keras_missing_flatten",
            _("Your model has no Flatten between the last pooling layer and the first Dense "
              "layer, so Dense works on each pixel's channels separately and the output keeps "
              "the image's height and width; the lecture's {model} flattens the feature maps "
              "to one vector first: add `layers.Flatten()` before the first Dense.",
              model=model))
    missing_dropout = [layer for layer in missing if layer.kind == "Dropout"]
    extra_dropout = [layer for layer in extra if layer.kind == "Dropout"]
    if missing_dropout and extra_dropout:
        return _mistake(
            "keras_dropout_misplaced",
            _("Your Dropout is not where the lecture's {model} has it: it belongs right after "
              "the hidden Dense layer (it drops that layer's outputs while training), not "
              "before it or after the output layer.", model=model))
    if missing_dropout:
        return _mistake(
            "keras_dropout_missing",
            _("Your model has no Dropout where the lecture's {model} has one ({rate} after "
              "the hidden Dense layer): add `layers.Dropout(rate)` after it.", model=model,
              rate=_text(missing_dropout[0].settings.get('rate'))))
    if dropout_only:
        for i, j in lined.pairs:
            if want[i].kind == "Dropout" and not settings_equal(
                    "rate", want[i].settings.get("rate"), have[j].settings.get("rate")):
                return _mistake(
                    "keras_dropout_rate",
                    _("Your Dropout drops a share of {found} of the units; the lecture's "
                      "{model} uses {expected} (Dropout's argument is the share dropped, not "
                      "the share kept).", found=_text(have[j].settings.get('rate')),
                      model=model, expected=_text(want[i].settings.get('rate'))))
        return None
    if missing and len(missing) == 1 and not extra:
        return _mistake(
            "keras_layer_missing",
            _("Your model lacks the lecture's {layer} (the {model} has {expected} layers; "
              "yours has {found}).", layer=missing[0].show(missing[0].settings), model=model,
              expected=len(want), found=len(have)))
    return None


def _setting_mistake(name: str, want, have, i: int, j: int, model: str, previous: Any, *,
                     last: bool) -> Mistake | None:
    expected, found = want[i].settings.get(name), have[j].settings.get(name)
    layer = _ordinal(have, j)
    model = _model(model)
    if name == "padding":
        feature = _spatial(have[j].output_shape)
        should = _same_output(previous, have[j].settings.get("strides"))
        facts = {"layer": layer, "found": _text(found), "model": model,
                 "expected": _text(expected), "feature": feature, "should": should}
        sentence = _(
            "Your {layer} uses padding={found}; the lecture's {model} uses {expected}, so its "
            "feature map is {feature} instead of {should}: 'valid' shrinks each side by the "
            "kernel size minus 1, 'same' keeps height and width. This also changes the "
            "parameter count of the Dense layer after Flatten.", **facts) if (
            feature and should and feature != should) else _(
            "Your {layer} uses padding={found}; the lecture's {model} uses {expected}: "
            "'valid' shrinks each side by the kernel size minus 1, 'same' keeps height and "
            "width. This also changes the parameter count of the Dense layer after Flatten.",
            **facts)
        return _mistake(
            f"keras_padding_{str(found).lower()}" if str(found).lower() in ("valid", "same")
            else "keras_padding", sentence)
    if name == "kernel_size":
        return _mistake(
            "keras_kernel_size",
            _("Your {layer} uses a {found} kernel; the lecture's {model} uses {expected} "
              "(each filter sees a {expected} window, {expected} x channels weights plus a "
              "bias).", layer=layer, found=_size(found), model=model,
              expected=_size(expected)))
    if name == "strides" and have[j].kind.startswith("Conv"):
        kernel = have[j].settings.get("kernel_size")
        if found == kernel and found != expected:
            return _mistake(
                "keras_conv_positional_strides",
                _("Your {layer} moves {found} pixels at a time: `Conv2D(filters, 5, 5)` is "
                  "the Keras 1 spelling of a 5x5 kernel, but since Keras 2 the third "
                  "positional argument is `strides`. Write `Conv2D(filters, (5, 5))` or "
                  "`Conv2D(filters, kernel_size=5)`.", layer=layer, found=_size(found)))
        return _mistake(
            "keras_strides",
            _("Your {layer} uses strides {found}; the lecture's {model} uses {expected} (a "
              "convolution that moves one pixel at a time).", layer=layer,
              found=_size(found), model=model, expected=_size(expected)))
    if name in ("pool_size", "strides"):
        return _mistake(
            "keras_pool_size",
            _("Your {layer} uses pool size {found}; the lecture's {model} pools 2x2 windows "
              "with stride 2, halving height and width.", layer=layer, found=_size(found),
              model=model) if name == "pool_size" else _(
              "Your {layer} uses strides {found}; the lecture's {model} pools 2x2 windows "
              "with stride 2, halving height and width.", layer=layer, found=_size(found),
              model=model))
    if name in ("filters", "units"):
        return _mistake(
            f"keras_{name}",
            _("Your {layer} has {found} filters; the lecture's {model} has {expected} there.",
              layer=layer, found=_text(found), model=model, expected=_text(expected))
            if name == "filters" else
            _("Your {layer} has {found} units; the lecture's {model} has {expected} there.",
              layer=layer, found=_text(found), model=model, expected=_text(expected)))
    if name == "activation":
        if last and str(expected).lower() == "softmax" and str(found).lower() in (
                "linear", "none"):
            return MISSING_SOFTMAX
        return _mistake(
            "keras_activation",
            _("Your {layer} uses activation {found}; the lecture's {model} uses {expected} "
              "there (the output layer turns scores into class probabilities).", layer=layer,
              found=_text(found), model=model, expected=_text(expected)) if last else
            _("Your {layer} uses activation {found}; the lecture's {model} uses {expected} "
              "there (ReLU: max(0, x), which keeps gradients alive in deep networks).",
              layer=layer, found=_text(found), model=model, expected=_text(expected)))
    return None


# -- compile settings ----------------------------------------------------------------------


def compile_mistake(info: Mapping[str, Any], *, optimizer: str | None = None,
                    learning_rate: float | None = None, loss: Sequence[str] = (),
                    metrics: Sequence[str] = (), labels: str = "one-hot",
                    model: str = "model") -> Mistake | None:
    """The known mistake behind a difference in the compile settings.

    Args:
        info: ``describe_model(...)`` (``optimizer``, ``loss``, ``loss_args``, ``metrics``
            and ``layers`` for the output activation).
        optimizer, learning_rate, loss, metrics: What the check expects (None or empty:
            not checked).
        labels: What ``preprocess`` gives the loss: "one-hot" rows in this course.
    """
    if not info.get("compiled"):
        return None
    chosen = info.get("optimizer") or {}
    kind = str(chosen.get("class"))
    model = _model(model)
    if optimizer is not None and kind.lower() != optimizer.lower():
        return _mistake(
            "keras_optimizer",
            _("You compile with {found}; the lecture's {model} uses {optimizer} "
              "(`optimizer=keras.optimizers.{optimizer}(...)` or the string {string}).",
              found=_text(kind), model=model, optimizer=optimizer,
              string=repr(optimizer.lower())))
    rate = chosen.get("learning_rate")
    if learning_rate is not None and isinstance(rate, (int, float)) and math.isfinite(rate) \
            and not math.isclose(float(rate), learning_rate, rel_tol=1e-5):
        default = DEFAULT_RATES.get(kind.lower())
        facts = {"found": _text(float(rate)), "model": model, "kind": kind,
                 "expected": f"{learning_rate:g}"}
        return _mistake(
            "keras_learning_rate",
            _("Your optimizer's learning rate is {found}; the lecture's {model} uses "
              "{expected}. {found} is Keras's default for {kind}: the learning rate was most "
              "likely left out; write `keras.optimizers.{kind}(learning_rate={expected})`",
              **facts)
            if default is not None and math.isclose(float(rate), default) else
            _("Your optimizer's learning rate is {found}; the lecture's {model} uses "
              "{expected}.", **facts))
    wanted = {canonical_loss(name) for name in loss}
    found_loss = canonical_loss(info.get("loss")) if isinstance(info.get("loss"), str) else None
    from_logits = bool((info.get("loss_args") or {}).get("from_logits"))
    if wanted and found_loss not in wanted:
        if found_loss == "sparse_categorical_crossentropy" and labels == "one-hot" and \
                "categorical_crossentropy" in wanted:
            return _mistake(
                "keras_sparse_loss_on_one_hot",
                lazy("Your loss is 'sparse_categorical_crossentropy', which expects integer class "
                "labels (one number per image), but `preprocess` gives one-hot rows "
                "(to_categorical): with one-hot labels the loss is "
                "'categorical_crossentropy'."))
        if found_loss == "categorical_crossentropy" and "sparse_categorical_crossentropy" in \
                wanted:
            return _mistake(
                "keras_categorical_loss_on_integers",
                lazy("Your loss is 'categorical_crossentropy', which expects one-hot rows, but the "
                "labels are integers: use 'sparse_categorical_crossentropy' (or one-hot "
                "encode the labels)."))
        return _mistake(
            "keras_loss",
            _("You compile with the loss {found}; the lecture's {model} uses {expected}.",
              found=_text(info.get('loss')), model=model,
              expected=format_list(sorted(repr(n) for n in loss), style="or",
                                   locale=babel_locale())))
    if wanted and from_logits and last_activation(info) == "softmax":
        return _mistake(
            "keras_from_logits_on_probabilities",
            lazy("Your loss has `from_logits=True`, but your last layer already applies softmax: "
            "the loss applies softmax a second time to numbers that are probabilities. Keep "
            "the softmax and drop `from_logits=True` (it is for a last layer with no "
            "activation)."))
    have = {canonical_metric(str(name)) for name in info.get("metrics") or []}
    if metrics and any(canonical_metric(name) not in have for name in metrics):
        return _mistake(
            "keras_metrics",
            _("Your compile has metrics {found}; the lecture's model reports accuracy: "
              "`metrics=['accuracy']` (a list).", found=_text(list(info.get('metrics') or []))))
    return None


def last_activation(info: Mapping[str, Any]) -> str:
    """The output's activation in a description: the last layer's, Dropout and Flatten
    passed over, an activation layer folded in ("linear" when it has none)."""
    layers = [layer for layer in info.get("layers") or []
              if layer.get("class") not in ("Dropout", "Flatten", "Reshape")]
    if not layers:
        return ""
    last = layers[-1]
    if last.get("class") == "Softmax":
        return "softmax"
    return str((last.get("config") or {}).get("activation", "linear")).lower()


def logits_loss_failure(info: Mapping[str, Any]) -> Mistake | None:
    """For the one-step check: a from_logits loss on a softmax output (it may still fall)."""
    if bool((info.get("loss_args") or {}).get("from_logits")) and \
            last_activation(info) == "softmax":
        return compile_mistake(info, loss=("categorical_crossentropy",))
    return None


# -- preprocessing and the pipeline ------------------------------------------------------


def preprocess_mistake(received: Any, images: np.ndarray, labels: np.ndarray, *,
                       part: str, expected_shape: Sequence[int] | None = None
                       ) -> Mistake | None:
    """What a wrong ``preprocess`` output most likely comes from.

    Args:
        received: The student's x (``part="images"``) or y (``part="labels"``).
        images: The uint8 images given, (N, 28, 28).
        labels: The integer labels given, (N,).
        expected_shape: The shape the images should have, e.g. (N, 28, 28, 1).
    """
    try:
        answer = np.asarray(received, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if part == "images":
        raw = images.astype(np.float64)
        if answer.size != raw.size or not np.all(np.isfinite(answer)):
            return None
        if np.allclose(answer.reshape(raw.shape), raw):
            return _mistake(
                "keras_images_unscaled",
                lazy("Your images keep their pixel values 0..255: divide by 255 (`x / 255.0`, as "
                "in the lecture) so the network's inputs lie in [0, 1]."))
        if expected_shape is not None and tuple(answer.shape) != tuple(expected_shape) and \
                np.allclose(answer.reshape(raw.shape), raw / 255.0, rtol=1e-5, atol=1e-6):
            shape = "x".join(str(n) for n in answer.shape)
            wanted = "x".join(str(n) for n in expected_shape)
            return _mistake(
                "keras_image_shape",
                _("Your images have the right values (pixels / 255) but the shape {shape}; the "
                  "model takes {wanted}: Conv2D needs a channel axis (`tf.expand_dims(x, -1)` "
                  "or `x.reshape(-1, 28, 28, 1)`).", shape=shape, wanted=wanted)
                if len(expected_shape) == 4 else
                _("Your images have the right values (pixels / 255) but the shape {shape}; the "
                  "model takes {wanted}: Dense needs each image as one row of 784 "
                  "(`x.reshape(-1, 784)`).", shape=shape, wanted=wanted))
        return None
    if answer.size == labels.size and np.array_equal(answer.reshape(labels.shape),
                                                     labels.astype(np.float64)):
        return _mistake(
            "keras_labels_not_one_hot",
            lazy("Your labels are still class numbers (one per image); the lecture one-hot "
            "encodes them (`keras.utils.to_categorical(labels, 10)` or `tf.one_hot`), which "
            "'categorical_crossentropy' needs."))
    return None


def shuffle_mistake(pairs: Sequence[tuple[bytes, int]], expected: Sequence[tuple[bytes, int]]
                    ) -> Mistake | None:
    """Images and labels shuffled separately: the same images and the same labels, paired
    differently. ``pairs`` are (image bytes, label) from the student's pipeline."""
    found_images = sorted(image for image, _ in pairs)
    found_labels = sorted(label for _, label in pairs)
    if found_images == sorted(image for image, _ in expected) and \
            found_labels == sorted(label for _, label in expected) and \
            sorted(pairs) != sorted(expected):
        return _mistake(
            "keras_shuffled_separately",
            lazy("Your training pipeline has every image and every label, but not together: "
            "images and labels were shuffled separately, so most images carry another "
            "image's label. Shuffle the pairs: `tf.data.Dataset.from_tensor_slices((x, "
            "y)).shuffle(...)`, as in the lecture."))
    return None


@contextmanager
def diagnosing(diagnose: Callable[[], Mistake | None]) -> Iterator[None]:
    """Turn a check's plain failure inside the block into `Diagnosed` when ``diagnose()``
    names a mistake (computed only after a failure; a `Diagnosed` passes through)."""
    try:
        yield
    except Diagnosed:
        raise
    except AssertionError as exc:
        mistake = _safely(diagnose)
        if mistake is None:
            raise
        raise Diagnosed(str(exc), mistake) from None
