"""Keras 2 spellings that Keras 3 rejects, diagnosed from the student's source, not from
error text (the lecture's code is TF 2 era).

When a student call fails inside ``with keras_hints(student):``, the statements the
student's traceback passes through (file and line numbers: data the runtime reports) are
looked up in the submission's own source, parsed grader-side and never run, and the
function around each is searched for the spellings below: ``SGD(lr=...)``,
``optimizer.lr``, ``compile(metrics='acc')``, a ``.ckpt``/``.h5`` weights path, a loss
class without parentheses, ``fit_generator``/``predict_classes``, ``nb_epoch=``,
``np_utils``. A match re-raises the failure as `Diagnosed` (its message is the student's
error, then the sentence with today's spelling; the mistake's id travels as data); other
failures pass through unchanged. Keras's wording of its errors changes between versions;
the student's code does not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from grader.checks.diagnose import Diagnosed, Mistake
from grader.i18n import Domain, lazy
from grader.runtime.errors import StudentError, StudentFailure, TracebackLine

_, _n = Domain("checks").functions()

__all__ = ["KERAS2_SPELLINGS", "LEARNING_RATE_DIVERGES", "MISSING_SOFTMAX", "hint_for",
           "keras_hints", "step_failure"]

OPTIMIZERS = frozenset(("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
                        "Nadam", "Ftrl"))
_OPTIMIZERS_LOWER = frozenset(name.lower() for name in OPTIMIZERS)
LOSS_CLASSES = frozenset(("CategoricalCrossentropy", "SparseCategoricalCrossentropy",
                          "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError",
                          "KLDivergence", "CategoricalHinge", "Hinge", "SquaredHinge",
                          "Poisson"))
WEIGHTS_SUFFIX = ".weights.h5"
OLD_WEIGHTS_SUFFIXES = (".ckpt", ".h5", ".hdf5", ".tf")
REMOVED_METHODS = frozenset(("fit_generator", "evaluate_generator", "predict_generator",
                             "predict_classes", "predict_proba"))


def _spelling(mistake_id: str, sentence: str) -> Mistake:
    return Mistake(mistake_id, sentence, lambda: None)


KERAS2_SPELLINGS = {mistake.id: mistake for mistake in (
    _spelling("keras2_optimizer_lr",
              lazy("Hint: your optimizer is written `SGD(lr=...)`, the Keras 2 spelling: Keras 3 "
              "spells it `keras.optimizers.SGD(learning_rate=0.1)`; `lr=` was removed (the "
              "same for Adam, RMSprop, ...).")),
    _spelling("keras2_optimizer_decay",
              lazy("Hint: Keras 3 optimizers take no `decay=`; use a schedule: "
              "`learning_rate=keras.optimizers.schedules.ExponentialDecay(...)`.")),
    _spelling("keras2_lr_attribute",
              lazy("Hint: Keras 3 spells it `optimizer.learning_rate`; `.lr` was removed.")),
    _spelling("keras2_metrics_string",
              lazy("Hint: your compile passes `metrics='acc'` (a string), as in the lecture's "
              "Keras 2 code: Keras 3 wants a list: `metrics=[\"accuracy\"]`.")),
    _spelling("keras2_weights_path",
              lazy("Hint: Keras 3 saves weights only to a path ending in `.weights.h5`, e.g. "
              "`model.save_weights(\"alexnet.weights.h5\")`, and loads them from such a "
              "file; TensorFlow checkpoints (`.ckpt`) are gone.")),
    _spelling("keras2_loss_class",
              lazy("Hint: a class was passed where Keras wants an instance: write "
              "`loss=keras.losses.CategoricalCrossentropy()` (with parentheses), not the "
              "class.")),
    _spelling("keras2_removed_method",
              lazy("Hint: Keras 3 removed `fit_generator` and `predict_classes`: `model.fit` takes "
              "generators and `tf.data` datasets directly, and the predicted classes are "
              "`np.argmax(model.predict(x), axis=1)`.")),
    _spelling("keras2_nb_epoch", lazy("Hint: Keras spells it `epochs=`; `nb_epoch=` was removed.")),
    _spelling("keras2_np_utils",
              lazy("Hint: Keras 3 spells it `keras.utils.to_categorical(labels, 10)`; `np_utils` "
              "was removed.")),
)}
"""The Keras 2 spellings diagnosed, by `Mistake.id`."""


def _name(node: ast.AST) -> str:
    """The last name of ``keras.optimizers.SGD`` / ``SGD``; "" for anything else."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _old_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        node.value.lower().endswith(OLD_WEIGHTS_SUFFIXES) and \
        not node.value.lower().endswith(WEIGHTS_SUFFIX)


def _spellings(region: ast.AST, failed: ast.AST | None, error_type: str) -> list[str]:
    """Mistake ids of the Keras 2 spellings in ``region`` (a function or a statement);
    ``failed`` is the statement the failure was raised in."""
    found: list[str] = []
    nodes = list(ast.walk(region))
    old_path = any(_old_path(node) for node in nodes)
    for node in nodes:
        if isinstance(node, ast.Call):
            callee = _name(node.func)
            keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg}
            if "lr" in keywords and callee.lower() in _OPTIMIZERS_LOWER:
                found.append("keras2_optimizer_lr")
            if callee in OPTIMIZERS and "decay" in keywords:
                found.append("keras2_optimizer_decay")
            if "nb_epoch" in keywords:
                found.append("keras2_nb_epoch")
            if callee == "compile":
                metrics = keywords.get("metrics")
                if isinstance(metrics, ast.Constant) and isinstance(metrics.value, str):
                    found.append("keras2_metrics_string")
                loss = keywords.get("loss")
                if loss is not None and not isinstance(loss, ast.Call) and \
                        _name(loss) in LOSS_CLASSES:
                    found.append("keras2_loss_class")
            if callee in ("save_weights", "load_weights") and (
                    old_path or any(_old_path(arg) for arg in node.args) or (
                        failed is not None and error_type == "ValueError"
                        and any(sub is node for sub in ast.walk(failed)))):
                found.append("keras2_weights_path")
        elif isinstance(node, ast.Attribute):
            if node.attr == "lr" and isinstance(node.ctx, ast.Load):
                found.append("keras2_lr_attribute")
            elif node.attr in REMOVED_METHODS:
                found.append("keras2_removed_method")
            elif node.attr == "np_utils":
                found.append("keras2_np_utils")
        elif isinstance(node, ast.ImportFrom) and any(a.name == "np_utils" for a in node.names):
            found.append("keras2_np_utils")
    return found


def _innermost(tree: ast.AST, line: int, kinds: tuple[type, ...]) -> ast.AST | None:
    """The innermost node of the given kinds whose lines include ``line``."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, kinds) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if best is None or node.lineno >= best.lineno:
                best = node
    return best


def _frame_source(frame: TracebackLine) -> ast.AST | None:
    """A frame's one line parsed alone (no source file at hand): a call's argument line
    such as ``metrics='acc',`` parses as the arguments of a ``compile`` call (the call such
    keyword lines belong to in this chapter)."""
    text = frame.source.strip().rstrip(",")
    for attempt in (f"model.compile({text})", f"model.compile({text}\n)", text):
        try:
            return ast.parse(attempt)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


def hint_for(failure: StudentFailure, sources: dict[str, str] | None = None) -> Mistake | None:
    """The Keras 2 spelling that explains a student failure, from the student's code.

    Args:
        failure: The failure; only a `StudentError`'s exception type and traceback frames
            (file names, line numbers) are read, never its message.
        sources: The submission's sources by file name (``{"keras_mlp.py": "..."}``), as
            the grader read them; without one, a frame's own source line is parsed.

    Returns:
        The matching mistake of `KERAS2_SPELLINGS`, innermost frame first, or None.
    """
    if not isinstance(failure, StudentError):
        return None
    trees: dict[str, ast.AST | None] = {}
    for frame in reversed(failure.student_traceback):
        source = (sources or {}).get(frame.filename)
        if isinstance(source, str):
            if frame.filename not in trees:
                try:
                    trees[frame.filename] = ast.parse(source)
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    trees[frame.filename] = None
            tree = trees[frame.filename]
            if tree is None or not isinstance(frame.line, int):
                continue
            failed = _innermost(tree, frame.line, (ast.stmt,))
            region = _innermost(tree, frame.line, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                or failed
        else:
            failed = region = _frame_source(frame)
        if region is None:
            continue
        found = _spellings(region, failed, failure.type_name)
        if found:
            return KERAS2_SPELLINGS[found[0]]
    return None


def _sources(student: Any) -> dict[str, str]:
    """The submission's sources as the grader read them (definitions-only, same lines)."""
    runtime = getattr(student, "_runtime", None) if student is not None else None
    definitions = getattr(runtime, "definitions", None)
    if not isinstance(definitions, dict):
        return {}
    return {f"{name}.py": result.source for name, result in definitions.items()
            if isinstance(getattr(result, "source", None), str)}


@contextmanager
def keras_hints(student: Any = None) -> Iterator[None]:
    """Diagnose a Keras 2 spelling behind a student failure raised inside the block.

    Args:
        student: The ``student`` proxy, whose submission's source the spellings are
            looked up in (None: each traceback frame's own line).

    Raises:
        Diagnosed: ``"<the student's error>\nHint: <today's spelling>"`` when the code the
            failure went through uses a Keras 2 spelling; other failures are re-raised as
            they are.
    """
    try:
        yield
    except StudentFailure as failure:
        try:
            mistake = hint_for(failure, _sources(student))
        except Exception:  # noqa: BLE001 - a diagnosis never replaces the student's error
            mistake = None
        if mistake is None:
            raise
        raise Diagnosed(str(failure), mistake) from None


MISSING_SOFTMAX = Mistake(
    "keras_missing_softmax",
    lazy("Your last layer has no softmax, so the model outputs raw scores (logits), yet its loss "
    "compares the outputs with one-hot probabilities (rows of non-negative numbers summing "
    "to 1): add `activation='softmax'` to the last Dense layer, as in the lecture."),
    lambda: None)


LEARNING_RATE_DIVERGES = Mistake(
    "keras_learning_rate_too_large",
    lazy("Your optimizer's learning rate is larger than 1: one step jumps past the minimum and "
    "the loss grows. The lecture uses 0.1 for SGD and Keras's defaults (0.001) or 1e-4 for "
    "Adam."), lambda: None)
DIVERGING_RATE = 1.0  # above this no optimizer of the chapter lowers the loss reliably


def step_failure(spec, step: dict, what: str, *, batch: int = 32) -> None:
    """Fails the one-step check with the reason the spec explains, grader-side.

    The check's inputs are ones on which every correct model's loss falls (a fixed batch
    and the grader's seeded initialisation; tests/test_checks_keras_diagnoses.py proves it
    over several seeds), so a loss that does not fall is the model's doing.

    Args:
        spec: The student's model spec (`read_model`), plain data.
        step: ``{"before": float | None, "after": float | None}`` (`loss_after_one_step`).
        what: How the message names the model, e.g. "`build_cnn()`".
        batch: The batch's size, for the message.

    Raises:
        Diagnosed: The last layer lacks softmax while the loss expects probabilities; a
            from_logits loss on softmax outputs; a learning rate above 1.
        AssertionError: The loss did not fall (or is not finite) for another reason.
    """
    from grader.checks.keras_diagnoses import last_activation, logits_loss_failure
    from grader.evaluator.spec import describe

    before, after = step.get("before"), step.get("after")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) and after < before:
        return
    shown = lambda v: f"{v:.6g}" if isinstance(v, (int, float)) else _("not finite")  # noqa: E731
    message = _("one training step of the compiled {what} model on a batch of {batch} left its "
                "loss at {after} (before: {before}); expected it to fall", what=what,
                batch=batch, after=shown(after), before=shown(before))
    info = describe(spec)
    # Every loss but a from_logits cross-entropy compares the outputs with probabilities.
    logits_loss = bool((info.get("loss_args") or {}).get("from_logits"))
    if not logits_loss and last_activation(info) != "softmax":
        raise Diagnosed(message, MISSING_SOFTMAX)
    mistake = logits_loss_failure(info)
    if mistake is not None:
        raise Diagnosed(message, mistake)
    rate = (info.get("optimizer") or {}).get("learning_rate")
    if isinstance(rate, (int, float)) and rate > DIVERGING_RATE:
        raise Diagnosed(message, LEARNING_RATE_DIVERGES)
    raise AssertionError(_("{message}: check the optimizer, its learning rate and the loss",
                           message=message))
