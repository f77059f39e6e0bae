"""Why a test failed, and a hint a student can act on, read from its message alone.

Messages come from `grader.results.plugin.describe_exception`: a student failure starts
with its exception's type (``StudentTimeout: ...``, ``ImportFailed: ...``), an assertion
is the check's own sentence ("... returned shape (6, 785); expected (785, 6)"). Hints
name what to look at, never the answer: no reference code, no hidden values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Why a test did not earn its points; the class summary counts failures by these.
TIME_LIMIT = "time limit"
MEMORY = "memory"
UNREADABLE = "unreadable"
CRASH = "crash"
EXCEPTION = "exception"
WRONG = "wrong result"
PARTIAL = "partial credit"
NOT_RUN = "did not run"
REASONS = (TIME_LIMIT, MEMORY, CRASH, UNREADABLE, EXCEPTION, WRONG, PARTIAL, NOT_RUN)

REASON_TEXT = {
    TIME_LIMIT: "ran past its time limit and was stopped",
    MEMORY: "used more memory than allowed",
    CRASH: "the runtime crashed or exited",
    UNREADABLE: "the file could not be read or imported",
    EXCEPTION: "your code raised an exception",
    WRONG: "a value, shape or type differs from what was expected",
    PARTIAL: "partial credit",
    NOT_RUN: "the test could not run",
}

_MEMORY_RE = re.compile(r"memory limit|MemoryError|out of memory", re.IGNORECASE)
_TIMEOUT_RE = re.compile(r"^StudentTimeout:|did not finish within|timed out after", re.M)
_UNREADABLE_RE = re.compile(r"^ImportFailed:|could not import|could not be read|not a valid "
                            r"(zip|notebook)|unreadable", re.M | re.IGNORECASE)
_CRASH_RE = re.compile(r"^(StudentCrashed|ProtocolViolation):|sys\.exit|os\._exit|"
                       r"runtime (exited|was killed|died)", re.M)
_EXCEPTION_RE = re.compile(r"^(StudentError|StudentAttributeError):|^Traceback|"
                           r"^[A-Z]\w*(Error|Exception):", re.M)


def failure_reason(status: str, message: str, fraction: float = 0.0) -> str | None:
    """Why a test case lost points, or None when it passed.

    Args:
        status: the outcome's status (passed, failed, error, skipped).
        message: the outcome's message.
        fraction: the credit it earned, in [0, 1].

    Returns:
        One of `REASONS`, or None for a passed case.
    """
    if status == "passed" and fraction >= 1.0:
        return None
    if _TIMEOUT_RE.search(message):
        return TIME_LIMIT
    if _MEMORY_RE.search(message):
        return MEMORY
    if _UNREADABLE_RE.search(message):
        return UNREADABLE
    if _CRASH_RE.search(message):
        return CRASH
    if _EXCEPTION_RE.search(message):
        return EXCEPTION
    if status == "error" or "did not run" in message:
        return NOT_RUN
    if fraction > 0.0:
        return PARTIAL
    return WRONG


@dataclass(frozen=True)
class _Hint:
    pattern: re.Pattern[str]
    text: str


def _hint(pattern: str, text: str, flags: int = re.IGNORECASE) -> _Hint:
    return _Hint(re.compile(pattern, flags), text)


# First match wins: the specific before the general.
HINTS = (
    _hint(r"NotImplementedError",
          "This function still raises NotImplementedError: fill in its body (keep its name, "
          "signature and return value)."),
    _hint(r"SyntaxError|IndentationError",
          "Your file does not parse: fix the line shown. `python -c \"import <module>\"` "
          "in your folder shows the same error."),
    _hint(r"^ImportFailed:",
          "Your file raised an error while being imported: only definitions and imports "
          "should run at the top level; put experiments under "
          "`if __name__ == \"__main__\":`.", re.M),
    _hint(r"did not finish within|StudentTimeout|timed out after",
          "It ran past the time limit. Did you leave training running at import, or a loop "
          "that never ends? Use the arguments you are given (epochs, batch size) rather than "
          "your own, and vectorise with numpy instead of looping over pixels."),
    _hint(r"memory limit|MemoryError|out of memory",
          "It used more memory than allowed: avoid building huge intermediate arrays (an "
          "N x N matrix, a copy of the data per batch) and free what you no longer need."),
    _hint(r"sys\.exit|os\._exit|exit\(\)",
          "Your code stopped the interpreter: never call exit(), sys.exit() or os._exit() in "
          "the functions you hand in; return a value or raise an exception."),
    _hint(r"^StudentCrashed:",
          "The process running your code died: look for runaway recursion, huge outputs or "
          "calls that end the interpreter.", re.M),
    _hint(r"\bnan\b|\binf\b|overflow|non-finite|not finite|±1000",
          "Values overflowed to inf or nan. In softmax, subtract the row max before exp (it "
          "does not change the result); in a log, keep its argument away from 0."),
    _hint(r"does not match the numerical gradient|numerical gradient|directional derivative",
          "Compare your backward with the numerical gradient: it perturbs each input of your "
          "own forward. Check each factor of the chain rule, whether you divide by the batch "
          "size where the forward does, and the sign. `grader check` runs the same check."),
    _hint(r"returned shape \((\d+), (\d+)\); expected \(\2, \1\)",
          "The shape is transposed: check the order of the operands (and which one is "
          "transposed) in your matrix product.", 0),
    _hint(r"returned shape|has shape|expected shape",
          "The shape differs: compare it with the shapes in the docstring, and which axis you "
          "sum or take the maximum over."),
    _hint(r"rows? (must )?sum|row sums",
          "Each row of probabilities must sum to 1: normalise over the class axis of each "
          "row, not over the whole array or the batch axis."),
    _hint(r"standard deviation 0\b|has mean",
          "Check the initialisation: random normal weights scaled by sqrt(2 / fan_in) (He), "
          "not zeros or a constant."),
    _hint(r"standard deviation",
          "Check the scale of the initialisation: He initialisation divides normal(0, 1) "
          "draws by sqrt(fan_in / 2)."),
    _hint(r"test accuracy .* expected at least|below .*: partial credit",
          "Training did not reach the threshold. Look at the learning curve: a loss that "
          "does not fall points to the gradients or the update's sign and learning rate; a "
          "curve that is flat from the start points to the initialisation."),
    _hint(r"latent_dims|keep the first size|the search must keep",
          "Keep the model with the best validation accuracy among the sizes tried, not the "
          "last one trained."),
    _hint(r"expected a pair|returned NoneType|returned None\b",
          "Check what your function returns: the docstring says what to return (a missing "
          "`return` gives None)."),
    _hint(r"has no attribute|AttributeError",
          "A name the tests use is missing: keep the skeleton's class, method and attribute "
          "names (the docstrings list the attributes forward and backward must set)."),
    _hint(r"ProtocolViolation|may not cross",
          "Return numpy arrays, numbers, strings, lists or dicts; other objects cannot be "
          "checked."),
    _hint(r"values differ from the expected ones|returned .*; expected",
          "The first differing entries are listed (got, expected). Try the same small input "
          "by hand or in a notebook and compare step by step."),
)


def hint_for(message: str) -> str:
    """A hint for a failure message, or "" when none applies."""
    for hint in HINTS:
        if hint.pattern.search(message):
            return hint.text
    return ""
