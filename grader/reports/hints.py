"""Why a test failed, and a hint a student can act on, chosen from the outcome's data.

Each `TestOutcome` carries its `kind` (set by `grader.results.plugin` from the exception's
class: a check's AssertionError, a `StudentFailure`'s own kind, or grader code's exception)
and, when a check recognised a known mistake, its `diagnosis`. Reasons and hints come from
those fields alone, never from the message's text. Hints name what to look at, never the
answer: no reference code, no hidden values.
"""

from __future__ import annotations

from grader.i18n import Domain, lazy
from grader.results.records import (
    ERROR,
    KIND_CRASH,
    KIND_EXCEPTION,
    KIND_GRADER_ERROR,
    KIND_MEMORY,
    KIND_NOT_RUN,
    KIND_PARTIAL,
    KIND_PASSED,
    KIND_REFUSED,
    KIND_SKIPPED,
    KIND_TIME_BUDGET,
    KIND_TIME_LIMIT,
    KIND_UNREADABLE,
    KIND_WRONG,
    TestOutcome,
)

_, _n = Domain("reports").functions()

# Why a test did not earn its points; the class summary counts failures by these, grader
# errors first (they are the instructor's to resolve, not the student's).
GRADER_ERROR = KIND_GRADER_ERROR
TIME_LIMIT = KIND_TIME_LIMIT
TIME_BUDGET = KIND_TIME_BUDGET
MEMORY = KIND_MEMORY
UNREADABLE = KIND_UNREADABLE
CRASH = KIND_CRASH
REFUSED = KIND_REFUSED
EXCEPTION = KIND_EXCEPTION
WRONG = KIND_WRONG
PARTIAL = KIND_PARTIAL
NOT_RUN = KIND_NOT_RUN
REASONS = (GRADER_ERROR, TIME_LIMIT, TIME_BUDGET, MEMORY, CRASH, UNREADABLE, REFUSED,
           EXCEPTION, WRONG, PARTIAL, NOT_RUN)

# What each reason is called where a report names it (the kind's English is its key).
REASON_LABEL = {
    GRADER_ERROR: lazy("grader error"),
    TIME_LIMIT: lazy("time limit"),
    TIME_BUDGET: lazy("time budget exhausted"),
    MEMORY: lazy("memory"),
    CRASH: lazy("crash"),
    UNREADABLE: lazy("unreadable"),
    REFUSED: lazy("refused value"),
    EXCEPTION: lazy("exception"),
    WRONG: lazy("wrong result"),
    PARTIAL: lazy("partial credit"),
    NOT_RUN: lazy("did not run"),
}

# Texts are marked with `lazy` here and translated where they are shown (`reason_text`,
# `hint_for`), in the language in effect then.
REASON_TEXT = {
    GRADER_ERROR: lazy("the grader's own code failed: not charged, the grade is provisional"),
    TIME_LIMIT: lazy("ran past its time limit and was stopped"),
    TIME_BUDGET: lazy("the submission's total time budget was used up"),
    MEMORY: lazy("used more memory than allowed"),
    CRASH: lazy("the runtime crashed or exited"),
    UNREADABLE: lazy("the file could not be read or imported"),
    REFUSED: lazy("a returned value could not be checked (not plain data, or too large)"),
    EXCEPTION: lazy("your code raised an exception"),
    WRONG: lazy("a value, shape or type differs from what was expected"),
    PARTIAL: lazy("partial credit"),
    NOT_RUN: lazy("the test could not run"),
}

HINTS = {
    GRADER_ERROR: lazy(
        "This is the grader's fault, not yours: the check itself failed. It costs you "
        "nothing; your instructor will look at it and grade it again."),
    TIME_LIMIT: lazy(
        "It ran past the time limit. Did you leave training running at import, or a loop "
        "that never ends? Use the arguments you are given (epochs, batch size) rather than "
        "your own, and vectorise with numpy instead of looping over pixels."),
    TIME_BUDGET: lazy(
        "Your code used up the total time all its calls may take together: look for the "
        "slowest function (an endless loop, training at import, loops over pixels) - the "
        "tests after it could not run."),
    MEMORY: lazy(
        "It used more memory than allowed: avoid building huge intermediate arrays (an N x N "
        "matrix, a copy of the data per batch) and free what you no longer need."),
    CRASH: lazy(
        "The process running your code died or was stopped: never call exit(), sys.exit() or "
        "os._exit() in the functions you hand in, and look for runaway recursion or huge "
        "outputs."),
    UNREADABLE: lazy(
        "Your file could not be imported: it does not parse, or it raised an error at the "
        "top level. Fix the line shown; `python -c \"import <module>\"` in your folder shows "
        "the same error. Only definitions and imports should run at import; put experiments "
        "under `if __name__ == \"__main__\":`."),
    REFUSED: lazy(
        "Return numpy arrays, numbers, strings, lists or dicts of the documented shape; other "
        "objects (generators, open files, huge arrays) cannot be checked."),
    EXCEPTION: lazy(
        "Your code raised the exception shown, at the line of your file in the traceback. A "
        "NotImplementedError means the function still has the skeleton's body."),
    WRONG: lazy(
        "The message lists what was checked, what was expected and what came back. Try the "
        "same small input by hand or in a notebook and compare step by step."),
    PARTIAL: lazy(
        "Training did not reach the full-credit threshold. Look at the learning curve: a loss "
        "that does not fall points to the gradients or the update's sign and learning rate; a "
        "curve that is flat from the start points to the initialisation."),
    NOT_RUN: lazy("This test could not run; the message says why."),
}

DIAGNOSIS_HINT = lazy(
    "The diagnosis above names the mistake your answer matches: fix that step and compare "
    "with the lecture's formula.")

# Hints that need more than the kind: chosen from the outcome's figures (what was checked
# and what came back), each only where its cause is plausible.
GRADIENT_HINT = lazy(
    "Your backward pass disagrees with the numerical gradient of your own forward pass, so "
    "the forward may be right and the backward wrong. The heat map in report.html shows "
    "which entries differ: a whole row or column points to a sum over the wrong axis or a "
    "missing transpose, every entry to a factor or a sign.")
NON_FINITE_HINT = lazy(
    "Some of your values are NaN or infinite (hatched in the heat map). np.exp of a large "
    "number overflows and np.log(0) is -inf: subtract the row's maximum before exp, and keep "
    "log's argument above 0.")
KERAS_PARTIAL_HINT = lazy(
    "The grader trained the model your build function returns, with its own loop, on the "
    "stated budget; the accuracy it reached is below the full-credit threshold. Compare your "
    "layers, activations, loss, optimizer and learning rate with the assignment's "
    "specification, and look at the learning curve: a loss that stays flat points to the "
    "optimizer settings or a missing activation.")
GRADIENT_FIGURES = ("gradient_error", "gradient_errors")
DIFFERENCE_FIGURE = "gradient_difference"


def failure_reason(outcome: TestOutcome) -> str | None:
    """Why a test case lost points (one of `REASONS`), or None when it earned them all.

    Read from ``outcome.kind``; a record older than kinds (no kind) is read from its status
    and fraction alone.
    """
    kind = outcome.kind
    if kind == GRADER_ERROR:
        return GRADER_ERROR  # even when scoring credited it provisionally
    if outcome.status == "passed" and outcome.fraction >= 1.0:
        return None
    if kind in REASONS:
        return kind
    if kind == KIND_SKIPPED or outcome.status in (ERROR, "skipped"):
        return NOT_RUN
    if kind == KIND_PASSED or outcome.fraction > 0.0:
        return PARTIAL
    return WRONG


def hint_for(outcome: TestOutcome, *, keras: bool = False) -> str:
    """A hint for a failed case, from its kind, diagnosis and figures; "" when it passed.

    Args:
        outcome: the case.
        keras: whether the test trains a model the student's build function returned
            (its partial credit is about the model, not a training loop they wrote).
    """
    reason = failure_reason(outcome)
    if reason is None:
        return ""
    hint = HINTS.get(reason, "")
    if outcome.diagnosis:
        hint = DIAGNOSIS_HINT
    elif reason == WRONG and _non_finite_difference(outcome.figures):
        hint = NON_FINITE_HINT
    elif reason == WRONG and _failed_gradient(outcome.figures):
        hint = GRADIENT_HINT
    elif reason == PARTIAL and keras:
        hint = KERAS_PARTIAL_HINT
    return _(hint) if hint else ""


def reason_label(reason: str | None) -> str:
    """A reason's name (`REASONS`) in the language in effect; "" for none."""
    return _(REASON_LABEL[reason]) if reason in REASON_LABEL else (reason or "")


def reason_text(reason: str) -> str:
    """What a reason means (`REASON_TEXT`), in the language in effect."""
    return _(REASON_TEXT[reason]) if reason in REASON_TEXT else reason


def _entries(figures: dict, names: tuple[str, ...]) -> list[dict]:
    """The dict values of figures `names` (a figure attached several times is a list)."""
    found: list[dict] = []
    for name in names:
        value = figures.get(name) if isinstance(figures, dict) else None
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                found.append(item)
    return found


def _failed_gradient(figures: dict) -> bool:
    """A gradient check of the case came back above its tolerance."""
    for entry in _entries(figures, GRADIENT_FIGURES):
        try:
            if float(entry["relative_error"]) >= float(entry["tolerance"]):
                return True
        except (KeyError, TypeError, ValueError):
            continue  # a degenerate check has no error: the message says why
    return False


def _non_finite_difference(figures: dict) -> bool:
    """A gradient difference of the case holds NaN or infinite entries (stored as None)."""
    return any(isinstance(row, list) and any(cell is None for cell in row)
               for entry in _entries(figures, (DIFFERENCE_FIGURE,))
               for row in (entry.get("rows") if isinstance(entry.get("rows"), list) else []))
