"""Hints for the Keras 2 spellings that Keras 3 rejects (the lecture's code is TF 2 era).

Each pattern below was triggered in the installed Keras (3.15, TensorFlow 2.21) and
matched against the message Keras raised; `tests/test_keras_tools.py` re-triggers
each through a sandboxed runtime. A hidden test wraps student calls::

    with keras_hints():
        model = student.keras_mlp.build_sequential_mlp()

and a `StudentFailure` whose message matches a pattern is re-raised as an
``AssertionError`` carrying the student's error and the hint with today's spelling;
other failures pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from grader.checks.diagnose import Diagnosed, Mistake
from grader.runtime.errors import StudentFailure

__all__ = ["HINTS", "MISSING_SOFTMAX", "hint_for", "keras_hints", "step_failure"]

HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), hint) for
                                                       pattern, hint in (
    # keras.optimizers.SGD(lr=0.1): "Argument(s) not recognized: {'lr': 0.1}"
    (r"Argument\(s\) not recognized: \{[^}]*'lr'",
     "Keras 3 spells it `keras.optimizers.SGD(learning_rate=0.1)`; `lr=` was removed "
     "(the same for Adam, RMSprop, ...)."),
    # keras.optimizers.SGD(learning_rate=0.1, decay=...) only warns; other removed arguments:
    (r"Argument\(s\) not recognized: \{[^}]*'(decay|epsilon_decay)'",
     "Keras 3 optimizers take no `decay=`; use a schedule: "
     "`learning_rate=keras.optimizers.schedules.ExponentialDecay(...)`."),
    # optimizer.lr
    (r"object has no attribute 'lr'",
     "Keras 3 spells it `optimizer.learning_rate`; `.lr` was removed."),
    # model.compile(..., metrics='acc'): "Expected `metrics` argument to be a list, tuple, or dict"
    (r"Expected `metrics` argument to be a list, tuple, or dict",
     "Keras 3 wants a list: `metrics=[\"accuracy\"]`, not `metrics='acc'`."),
    # model.save_weights("w.ckpt") / ("w.h5"): "The filename must end in `.weights.h5`"
    (r"filename must end in `\.weights\.h5`",
     "Keras 3 saves weights only to a path ending in `.weights.h5`, e.g. "
     "`model.save_weights(\"alexnet.weights.h5\")`; TensorFlow checkpoints (`.ckpt`) are gone."),
    # model.load_weights("w.ckpt"): "File format not supported: filepath=..."
    (r"File format not supported: filepath=",
     "Keras 3 loads weights from a `.weights.h5` file written by `model.save_weights`."),
    # model.save("folder"): "Invalid filepath extension for saving"
    (r"Invalid filepath extension for saving",
     "Keras 3 saves a whole model to a `.keras` file: `model.save(\"model.keras\")`; "
     "a SavedModel folder is `model.export(path)`."),
    # compile(loss=keras.losses.CategoricalCrossentropy) then save / get_compile_config:
    # "CategoricalCrossentropy.get_config() missing 1 required positional argument: 'self'"
    (r"(\w+)\.get_config\(\) missing 1 required positional argument: 'self'",
     "a class was passed where Keras wants an instance: write "
     "`loss=keras.losses.CategoricalCrossentropy()` (with parentheses), not the class."),
    # model.fit_generator / evaluate_generator / predict_generator
    (r"has no attribute '(fit|evaluate|predict)_generator'",
     "Keras 3 removed `fit_generator`; `model.fit` takes generators and `tf.data` "
     "datasets directly."),
    # model.predict_classes(x)
    (r"has no attribute 'predict_classes'",
     "Keras 3 removed `predict_classes`; use `np.argmax(model.predict(x), axis=1)`."),
    # model.fit(..., nb_epoch=10)
    (r"unexpected keyword argument 'nb_epoch'",
     "Keras spells it `epochs=`; `nb_epoch=` was removed."),
    # from keras.utils import np_utils
    (r"(has no attribute|cannot import name) 'np_utils'",
     "Keras 3 spells it `keras.utils.to_categorical(labels, 10)`; `np_utils` was removed."),
))
"""(pattern, hint) pairs, first match wins."""


def hint_for(message: str) -> str | None:
    """The hint for an error message from Keras, or None.

    Args:
        message: The error's text (``str()`` of a `StudentFailure` works).

    Returns:
        A sentence with today's spelling, e.g. "Keras 3 spells it
        `keras.optimizers.SGD(learning_rate=0.1)`; `lr=` was removed ...", or None.
    """
    for pattern, hint in HINTS:
        if pattern.search(message):
            return hint
    return None


@contextmanager
def keras_hints() -> Iterator[None]:
    """Attach a Keras 3 hint to a student failure raised inside the block.

    Usable as ``with keras_hints():`` or as a decorator (``@keras_hints()``).

    Raises:
        AssertionError: ``"<the student's error>\\nHint: <hint>"`` when the failure's
            message matches a known Keras 3 change; other failures are re-raised as they
            are.
    """
    try:
        yield
    except StudentFailure as failure:
        message = str(failure)
        hint = hint_for(message)
        if hint is None:
            raise
        raise AssertionError(f"{message}\nHint: {hint}") from None


MISSING_SOFTMAX = Mistake(
    "keras_missing_softmax",
    "Your last layer has no softmax, so the model outputs raw scores (logits), yet its loss "
    "compares the outputs with one-hot probabilities (rows of non-negative numbers summing "
    "to 1): add `activation='softmax'` to the last Dense layer, as in the lecture.",
    lambda: None)


def _last_activation(spec) -> str | None:
    """The activation of the model's last declared layer ("linear" when it has none)."""
    from grader.evaluator.spec import describe

    layers = describe(spec)["layers"]
    return layers[-1]["config"].get("activation") if layers else None


def step_failure(spec, step: dict, what: str) -> None:
    """Fails the one-step check with the reason the spec explains, grader-side.

    Args:
        spec: The student's model spec (`read_model`), plain data.
        step: ``{"before": float | None, "after": float | None}`` (`loss_after_one_step`).
        what: How the message names the model, e.g. "`build_cnn()`".

    Raises:
        Diagnosed: The last layer lacks softmax while the loss expects probabilities.
        AssertionError: The loss did not fall (or is not finite) for another reason.
    """
    before, after = step.get("before"), step.get("after")
    if before is not None and after is not None and after < before:
        return
    shown = lambda v: "not finite" if v is None else f"{v:.6g}"  # noqa: E731 - two uses
    message = (f"one training step of the compiled {what} model on a batch of 32 left its "
               f"loss at {shown(after)} (before: {shown(before)}); expected it to fall")
    loss = spec.compile["loss"] if spec.compile else {}
    # Every loss but a from_logits cross-entropy compares the outputs with probabilities.
    logits_loss = bool(loss.get("args", {}).get("from_logits"))
    if not logits_loss and _last_activation(spec) != "softmax":
        raise Diagnosed(message, MISSING_SOFTMAX)
    raise AssertionError(f"{message}: check the optimizer, its learning rate and the loss")
