"""A student's Keras model as an artifact: its config, compile config and weights as plain data.

Runs in the grader's process and reads the student's model through the ``student``
proxy: ``model.get_config()``, ``model.get_compile_config()`` and each layer's
``get_weights()`` come back as plain data (dicts, lists, numbers, numeric arrays);
nothing the student's process computes is taken as a verdict. What the model's config
says *is* the submitted model: a student whose ``get_config`` lies has submitted the
model it describes, and that is what the evaluator trains and the architecture tests
check.

A subclassed model (the lecture's AlexNet) has no config of its layers. Its blocks
(``model.layers``: the ``conv`` Sequential, a Flatten, the ``fc`` Sequential) are read
one by one and chained in the order they were assigned in ``__init__``, a Flatten
added where ``call`` flattens with ``tf.reshape``. That chain is accepted only if it is
the model: the student's model and the chain rebuilt in the evaluator, with the
student's own weights, must give the same predictions on a few random inputs (never
test data).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from grader.evaluator.runtime import evaluator_for
from grader.evaluator.spec import ModelRefused, ModelSpec, chain_spec, describe, weight_shapes
from grader.i18n import Domain
from grader.runtime.errors import StudentFailure

_, _n = Domain("checks").functions()

__all__ = ["EQUIVALENCE_ATOL", "EQUIVALENCE_INPUTS", "EQUIVALENCE_RTOL", "describe_model",
           "loss_after_one_step", "model_weights", "read_model", "untrained_predictions"]

EQUIVALENCE_INPUTS = 4
"""Random inputs the subclassed model and its rebuilt chain are compared on."""
EQUIVALENCE_RTOL = 1e-4  # the same float32 computation in two processes: rounding only
EQUIVALENCE_ATOL = 1e-5
CONTAINERS = ("Sequential", "Functional")
MAX_DEPTH = 3  # nested blocks a model may have


def _plain(value: Any, what: str, depth: int = 0) -> Any:
    """``value`` if it is plain data (no handles to objects in the student's process)."""
    if depth > 40:
        raise ModelRefused(_("{what} is nested too deeply", what=what))
    if isinstance(value, dict):
        for item in value.values():
            _plain(item, what, depth + 1)
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            _plain(item, what, depth + 1)
        return value
    if value is None or isinstance(value, (str, int, float, bool, np.ndarray)):
        return value
    type_name = getattr(value, "type_name", type(value).__name__)
    raise ModelRefused(_("{what} holds a {type}, which is not plain data (a Keras config holds "
                         "only numbers, strings, lists and dicts)", what=what, type=type_name))


def _type_name(model: Any, what: str) -> str:
    name = getattr(model, "type_name", None)
    if not isinstance(name, str):
        raise ModelRefused(_("{what} returned {type}; expected a Keras model", what=what,
                             type=type(model).__name__))
    return name


def _block_entries(model: Any, what: str, depth: int = 0) -> list[dict[str, Any]]:
    """Config entries of a subclassed model's blocks, in the order it holds them."""
    if depth > MAX_DEPTH:
        raise ModelRefused(_("{what}: blocks nested more than {depth} deep", what=what,
                             depth=MAX_DEPTH))
    blocks = model.layers
    if not isinstance(blocks, list) or not blocks:
        raise ModelRefused(_("{what} holds no layers", what=what))
    entries: list[dict[str, Any]] = []
    for block in blocks:
        kind = _type_name(block, f"{what}'s layer")
        if kind == "InputLayer":
            continue
        config = _plain(block.get_config(), f"`{kind}.get_config()`")
        if isinstance(config, dict) and isinstance(config.get("layers"), list):
            entries.append({"class_name": "Functional" if "output_layers" in config
                            else "Sequential", "config": config})
        elif isinstance(config, dict) and kind not in CONTAINERS and not config.get("layers"):
            entries.append({"class_name": kind, "config": config})
        else:
            entries.extend(_block_entries(block, f"{what}.{kind}", depth + 1))
    return entries


def _compile_settings(model: Any) -> dict[str, Any]:
    """The compile arguments as given, for a model whose ``get_compile_config`` fails.

    Keras cannot serialise a loss class passed where it wants an instance
    (``loss=keras.losses.CategoricalCrossentropy``), though it trains the same; the
    arguments are read one by one instead, the class by its name.
    """
    given = model._compile_config
    settings = getattr(given, "config", None) if given is not None else None
    if not isinstance(settings, dict):
        return {}
    optimizer = settings.get("optimizer")
    if hasattr(optimizer, "type_name"):
        optimizer = {"class_name": optimizer.type_name, "config": optimizer.get_config()}
    loss = settings.get("loss")
    if getattr(loss, "type_name", None) == "type":  # a class: its repr names it
        match = re.search(r"\.(\w+)'>", repr(loss))
        loss = {"class_name": match.group(1) if match else "?", "config": {},
                "passed_class": True}
    metrics = settings.get("metrics")
    return {"optimizer": optimizer, "loss": loss,
            "metrics": metrics if isinstance(metrics, (list, str)) else []}


def _spec(model: Any, what: str, input_shape: Sequence[int] | None,
          strict: bool = True) -> tuple[ModelSpec, bool]:
    """The model's spec, and whether it is a chain read from a subclassed model's blocks
    (always read strictly: only a chain the evaluator can rebuild can be verified)."""
    kind = _type_name(model, what)
    config = _plain(model.get_config(), f"{what}: `get_config()`")
    try:
        compile_config = model.get_compile_config()
    except StudentFailure:
        compile_config = _compile_settings(model)  # e.g. a loss class passed for an instance
    compile_config = _plain(compile_config, f"{what}: `get_compile_config()`")
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        model_class = "Functional" if "output_layers" in config else "Sequential"
        return chain_spec(config, model_class=model_class, input_shape=input_shape,
                          compile_config=compile_config, strict=strict), False
    entries = _block_entries(model, what)
    return chain_spec({"layers": entries}, model_class=kind, input_shape=input_shape,
                      compile_config=compile_config, implicit_flatten=True), True


def _leaf_weights(layer: Any, depth: int = 0) -> Iterator[list[np.ndarray]]:
    """The weight arrays of ``layer`` and the layers it holds, one leaf layer at a time, in
    Keras's order (read lazily: the caller stops at the first that does not fit)."""
    kind = getattr(layer, "type_name", "")
    if kind == "InputLayer":
        return
    inner = None
    if depth <= MAX_DEPTH and (kind in CONTAINERS or depth == 0):
        inner = layer.layers
    if isinstance(inner, list) and inner:
        for sub in inner:
            yield from _leaf_weights(sub, depth + 1)
        return
    weights = layer.get_weights()
    if not isinstance(weights, list) or not all(isinstance(w, np.ndarray) for w in weights):
        raise ModelRefused(_("`{kind}.get_weights()` did not return a list of arrays",
                             kind=kind))
    yield weights


def model_weights(model: Any, spec: ModelSpec, what: str = "the model") -> list[np.ndarray]:
    """The model's weights, layer by layer, checked against the shapes its spec implies.

    Args:
        model: The student's model (a handle).
        spec: Its spec (`read_model`).
        what: How messages name the model.

    Returns:
        float32 arrays, kernel then bias of each layer, in the spec's order.

    Raises:
        ModelRefused: If the weights do not fit the layers the config declares.
    """
    expected = weight_shapes(spec)
    weights: list[np.ndarray] = []
    for layer_weights in _leaf_weights(model):
        weights.extend(layer_weights)
        if len(weights) > len(expected) or any(
                tuple(w.shape) != shape for w, shape in zip(weights, expected, strict=False)):
            # stop reading: a model with thousands of 64 MB layers would otherwise be held
            # whole in the grader's memory before its shapes were compared
            break
    found = [tuple(int(d) for d in w.shape) for w in weights]
    if not found and expected:
        raise ModelRefused(_("{what} has no weights yet; build it before returning it, e.g. by "
                             "calling it once on a batch of zeros of shape (1, {shape})",
                             what=what, shape=", ".join(map(str, spec.input_shape))))
    if found != expected or not all(w.dtype.kind == "f" for w in weights):
        raise ModelRefused(_("{what}'s weights ({found} arrays: {found_shapes}...) do not fit "
                             "the layers its config declares ({expected} arrays: "
                             "{expected_shapes}...)", what=what, found=len(found),
                             found_shapes=found[:6], expected=len(expected),
                             expected_shapes=expected[:6]))
    return [np.asarray(w, dtype=np.float32) for w in weights]


def read_model(student: Any, model: Any, *, what: str = "the model",
               input_shape: Sequence[int] | None = None) -> ModelSpec:
    """The student's model as a validated `ModelSpec` (see the module docstring).

    Args:
        student: The ``student`` proxy (the evaluator of this submission is used to
            verify a subclassed model).
        model: The model, a handle returned by the student's build function.
        what: How messages name it, e.g. "`build_cnn()`".
        input_shape: The shape of one example, when the model's config does not say it
            (a subclassed model).

    Returns:
        The spec.

    Raises:
        ModelRefused: A config outside the allow-list, or a subclassed model whose
            blocks, chained, do not compute what the model computes.
        StudentFailure: When the student's code raises in ``get_config`` and the like.
    """
    spec, chained = _spec(model, what, input_shape)
    if chained:
        _check_equivalence(student, model, spec, what)
    return spec


def _check_equivalence(student: Any, model: Any, spec: ModelSpec, what: str) -> None:
    """The student's model and its chain rebuilt with its own weights agree on random inputs."""
    weights = model_weights(model, spec, what)
    x = np.random.default_rng(7).uniform(0, 1, size=(EQUIVALENCE_INPUTS, *spec.input_shape))
    x = x.astype(np.float32)
    theirs = model.predict(x, verbose=0)
    if not isinstance(theirs, np.ndarray) or theirs.dtype.kind != "f":
        theirs = np.asarray(theirs)
    if theirs.dtype.kind not in "fiu":  # strings or None would raise TypeError in allclose
        raise ModelRefused(_("{what} is a subclassed model whose `predict` returned an array of "
                             "dtype {dtype}; expected real numbers (float predictions)",
                             what=what, dtype=theirs.dtype))
    ours = evaluator_for(student).evaluator.predict(spec.as_plain(), x, weights=weights)
    if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=EQUIVALENCE_RTOL,
                                                     atol=EQUIVALENCE_ATOL):
        gap = (float(np.max(np.abs(theirs - ours))) if theirs.shape == ours.shape
               else _("shapes {theirs} and {ours}", theirs=theirs.shape, ours=ours.shape))
        chain = ", ".join(layer["class"] for layer in spec.layers)
        raise ModelRefused(_(
            "{what} is a subclassed model; the grader reads it as its layers applied in the "
            "order they are assigned in __init__ ({chain}), but on {inputs} random inputs that "
            "chain, with your model's own weights, does not give your model's predictions "
            "(largest difference: {gap}); assign the layers in the order `call` uses them",
            what=what, chain=chain, inputs=EQUIVALENCE_INPUTS, gap=gap))


def describe_model(student: Any, model: Any, *, what: str = "the model",
                   input_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """The model described as `grader.checks.architecture` reads it (`spec.describe`).

    Unlike `read_model`, a Sequential or functional model with layers or settings outside
    the allow-list is still described (they are listed by class and plain settings, and
    under ``"refused"`` with the reason), so that such a layer costs the architecture
    checks it breaks and no others; it is never trained. A subclassed model is read as
    `read_model` reads it (verified, or refused).
    """
    spec, chained = _spec(model, what, input_shape, strict=False)
    if chained:
        _check_equivalence(student, model, spec, what)
    described = describe(spec)
    described["refused"] = list(spec.refused)
    return described


def _evaluate(student: Any, what: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the evaluator; its failures are the declared model's (e.g. a loss that does not
    fit the output), reported as such."""
    try:
        return getattr(evaluator_for(student).evaluator, name)(*args, **kwargs)
    except StudentFailure as exc:
        raise AssertionError(_("running the model {what} declares failed in the grader's "
                               "evaluator: {error}", what=what, error=exc)) from None


def untrained_predictions(student: Any, spec: ModelSpec, x: np.ndarray, *,
                          what: str = "the model", seed: int = 0) -> np.ndarray:
    """The declared model's predictions on ``x`` from the grader's seeded initialisation.

    Args:
        student: The ``student`` proxy (names the submission's evaluator).
        spec: The model's spec.
        x: float32 (M, *input_shape), random inputs.
        what: How messages name the model.
        seed: The initialisation's seed.

    Returns:
        float32 (M, ...), computed in the evaluator.
    """
    return _evaluate(student, what, "predict", spec.as_plain(), x, seed=seed)


def loss_after_one_step(student: Any, spec: ModelSpec, x: np.ndarray, y: np.ndarray, *,
                        what: str = "the model", seed: int = 0) -> dict[str, float | None]:
    """The declared model's loss on ``(x, y)`` before and after one training step, in the
    evaluator, from the grader's seeded initialisation.

    Returns:
        ``{"before": float | None, "after": float | None}`` (None: not finite).

    Raises:
        ModelRefused: If the model is not compiled.
    """
    if spec.compile is None:
        raise ModelRefused(_("{what} returned a model that is not compiled; expected "
                             "`model.compile(optimizer=..., loss=..., metrics=[...])`",
                             what=what))
    return _evaluate(student, what, "loss_after_one_step", spec.as_plain(), x, y, seed=seed)
