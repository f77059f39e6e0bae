"""Plain records of one graded run: what each test found, and the grade it adds up to.

Pure functions only (no pytest, no I/O): `grader.results.plugin` feeds them pytest's
reports, `grader.scoring` turns `TestOutcome`s into a `Grade`, `to_results_json`
writes Gradescope's ``results.json`` shape with our extra fields beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.ids import printable

PASSED = "passed"
FAILED = "failed"
ERROR = "error"  # the test could not run: a fixture or collection failed
SKIPPED = "skipped"

# The kind of an outcome: why it earned what it earned, set where it is known (the plugin,
# from the exception's class and a StudentFailure's `kind`), stored, and rendered from it.
KIND_PASSED = "passed"
KIND_WRONG = "wrong result"  # an AssertionError from a check
KIND_PARTIAL = "partial credit"  # a passing test given a fraction below 1 by `credit`
KIND_EXCEPTION = "exception"  # the student's code raised
KIND_TIME_LIMIT = "time limit"
KIND_TIME_BUDGET = "time budget exhausted"
KIND_MEMORY = "memory"
KIND_CRASH = "crash"
KIND_REFUSED = "refused value"  # the answer may not cross the boundary (protocol)
KIND_UNREADABLE = "unreadable"  # the student's module could not be imported
KIND_GRADER_ERROR = "grader error"  # grader code raised: never the student's fault
KIND_SKIPPED = "skipped"
KIND_NOT_RUN = "did not run"
KINDS = (KIND_GRADER_ERROR, KIND_TIME_LIMIT, KIND_TIME_BUDGET, KIND_MEMORY, KIND_CRASH,
         KIND_UNREADABLE, KIND_REFUSED, KIND_EXCEPTION, KIND_WRONG, KIND_PARTIAL, KIND_NOT_RUN,
         KIND_SKIPPED, KIND_PASSED)
"""Every kind, in the order a class summary lists them (grader errors first)."""

# StudentFailure.kind (grader.runtime.errors) -> outcome kind.
STUDENT_FAILURE_KINDS = {
    "exception": KIND_EXCEPTION, "memory": KIND_MEMORY, "time_limit": KIND_TIME_LIMIT,
    "time_budget": KIND_TIME_BUDGET, "crash": KIND_CRASH, "import": KIND_UNREADABLE,
    "protocol": KIND_REFUSED,
}

# Stored on a test's `user_properties` by the `credit` and `figure` fixtures.
CREDIT_KEY = "nn_grader.credit"
FIGURE_KEY = "nn_grader.figure"
MESSAGE_KEY = "nn_grader.message"
KIND_KEY = "nn_grader.kind"  # (phase, kind) of a failed phase, set by the plugin
DIAGNOSIS_KEY = "nn_grader.diagnosis"  # the matched Mistake.id of a `Diagnosed` failure

GRADER_PROBLEM = "the grader could not"
"""How every grader failure recorded as a submission's problem begins (`grader_problem`)."""
MAX_JSON_DEPTH = 32  # figures are tables and curves; anything deeper is cut
MAX_REASON_CHARS = 300  # an exception's text in a problem: a reason, not a log


@dataclass(frozen=True)
class TestOutcome:
    """One test case's result.

    Attributes:
        name: the test function's name (``test_relu_forward``), parameters left out.
        case: the full case id (``test_relu_forward[seed1]``).
        status: passed, failed, error or skipped.
        fraction: the credit earned, in [0, 1]; partial credit comes from the `credit` fixture.
        message: what was checked, what was expected, what came back; never hidden test code.
        duration_s: wall time of the test's setup, call and teardown.
        figures: named plain-data figures (gradient errors, learning curves, confusion matrices).
        kind: why it earned what it earned, one of `KINDS` ("" in records older than kinds).
        diagnosis: the id of the known mistake the answer matched
            (`grader.checks.diagnose.Diagnosed.mistake`), or "".
    """

    __test__ = False  # not a pytest test class

    name: str
    case: str
    status: str
    fraction: float
    message: str = ""
    duration_s: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    diagnosis: str = ""


@dataclass(frozen=True)
class PartGrade:
    name: str
    points: float
    max_points: float
    tests: tuple[TestOutcome, ...]


@dataclass(frozen=True)
class Grade:
    """A submission's grade: parts with their tests, and what happened around them."""

    student_id: str
    assignment: str
    parts: tuple[PartGrade, ...]
    execution_time_s: float
    problems: tuple[str, ...] = ()  # intake problems: missing files, unreadable notebooks
    skipped_statements: tuple[str, ...] = ()  # top-level statements not run at import
    unassigned: tuple[TestOutcome, ...] = ()  # tests that ran but belong to no part
    sandbox_notes: tuple[str, ...] = ()  # protections this machine could not give the runtime

    @property
    def score(self) -> float:
        return round(sum(part.points for part in self.parts), 6)

    @property
    def max_score(self) -> float:
        return round(sum(part.max_points for part in self.parts), 6)


def outcome_from_phases(
    case: str,
    phases: dict[str, tuple[str, str]],
    duration_s: float,
    properties: list[tuple[str, Any]],
) -> TestOutcome:
    """Folds a test's setup/call/teardown results into one `TestOutcome`.

    Args:
        case: the test's case id, e.g. ``test_softmax[large-logits]``.
        phases: phase name -> (pytest outcome, message) for the phases that ran.
        duration_s: the summed duration of those phases.
        properties: the test's ``user_properties`` (credit, figures, messages).

    Returns:
        The test's outcome. A failed setup is an error, a failed call or teardown a failure.
    """
    name = case.split("[", 1)[0]
    figures = dict(value for prop, value in properties if prop == FIGURE_KEY)
    notes = [value for prop, value in properties if prop == MESSAGE_KEY]
    credit = [value for prop, value in properties if prop == CREDIT_KEY]
    setup_outcome, setup_message = phases.get("setup", ("passed", ""))
    call_outcome, call_message = phases.get("call", ("passed", ""))
    teardown_outcome, teardown_message = phases.get("teardown", ("passed", ""))

    kinds = dict(value for prop, value in properties if prop == KIND_KEY)  # phase -> kind
    diagnosis = next((value for prop, value in properties if prop == DIAGNOSIS_KEY), "")

    if setup_outcome == "skipped" or call_outcome == "skipped":
        status, fraction, message = SKIPPED, 0.0, setup_message or call_message
        kind = KIND_SKIPPED
    elif setup_outcome == "failed":
        status, fraction, message = ERROR, 0.0, setup_message
        kind = kinds.get("setup", KIND_GRADER_ERROR)  # a fixture's own failure is the grader's
    elif call_outcome == "failed" or teardown_outcome == "failed":
        status, fraction, message = FAILED, 0.0, call_message or teardown_message
        when = "call" if call_outcome == "failed" else "teardown"
        kind = kinds.get(when, KIND_GRADER_ERROR)
    else:
        status, fraction, message, kind = PASSED, 1.0, "", KIND_PASSED
        if credit:
            fraction, message = credit[-1]
            fraction = unit_fraction(fraction)
            status = PASSED if fraction >= 1.0 else FAILED
            kind = (KIND_PASSED if fraction >= 1.0 else
                    KIND_PARTIAL if fraction > 0.0 else KIND_WRONG)
    if credit and status == FAILED and not message:
        message = credit[-1][1]
    message = "\n".join(part for part in (*notes, message) if part)
    return TestOutcome(name, case, status, fraction, message, duration_s, strict_json(figures),
                       kind, diagnosis if isinstance(diagnosis, str) else "")


def unit_fraction(value: Any) -> float:
    """A credit fraction clamped to [0, 1]; NaN and anything unreadable earn 0."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return min(max(number, 0.0), 1.0) if not math.isnan(number) else 0.0


def strict_json(value: Any, _depth: int = 0) -> Any:
    """`value` as plain data that strict JSON (no NaN, no Infinity) can hold.

    Figures are built from what a student's code returned, so they may hold NaN, ±inf,
    numpy scalars and arrays, tuples or odd keys. Decision: a non-finite number becomes
    ``None`` (JSON ``null``), which the plots draw as a gap; numpy values become Python
    numbers and lists; mapping keys become strings; anything else becomes its ``str``;
    nesting deeper than `MAX_JSON_DEPTH` becomes the string "...".

    Args:
        value: Any value.

    Returns:
        A value for which ``json.dumps(..., allow_nan=False)`` succeeds.
    """
    if _depth > MAX_JSON_DEPTH:
        return "..."
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist") and not isinstance(value, (Mapping, list, tuple)):
        return strict_json(value.tolist(), _depth + 1)  # numpy scalars and arrays
    if isinstance(value, Mapping):
        return {str(key): strict_json(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [strict_json(item, _depth + 1) for item in value]
    return str(value)


def json_text(data: Any) -> str:
    """Strict JSON text of `data` (via `strict_json`): what every results.json writer writes."""
    return json.dumps(strict_json(data), indent=2, allow_nan=False)


def grader_problem(step: str, error: BaseException) -> str:
    """The problem recorded for a submission when the grader itself failed at a step.

    Args:
        step: What the grader was doing, as a verb phrase ("run the hidden suite").
        error: What it raised.

    Returns:
        "the grader could not <step>: <exception type>: <its first line>", printable.
    """
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return f"{GRADER_PROBLEM} {step}: {printable(text, limit=MAX_REASON_CHARS)}"


def is_grader_problem(problem: str) -> bool:
    """Whether a recorded problem is the grader's own failure (`grader_problem`)."""
    return problem.startswith(GRADER_PROBLEM)


def to_results_json(grade: Grade, *, hidden_visibility: str = "after_due_date") -> dict[str, Any]:
    """Gradescope's results.json for a grade, with nn-grader's own fields under ``extra``.

    Each part's points are split evenly between its test functions, and a parametrised
    function's share evenly between its cases.
    """
    tests = []
    for part in grade.parts:
        for outcome, max_score in zip(part.tests, case_shares(part.max_points, part.tests),
                                      strict=True):
            tests.append({
                "name": f"{part.name}: {outcome.case}",
                "score": round(max_score * outcome.fraction, 6),
                "max_score": round(max_score, 6),
                "status": PASSED if outcome.status == PASSED else FAILED,
                "output": outcome.message,
                "visibility": hidden_visibility,
                "extra": {"part": part.name, "status": outcome.status,
                          "kind": outcome.kind, "diagnosis": outcome.diagnosis,
                          "duration_s": round(outcome.duration_s, 4),
                          "figures": outcome.figures},
            })
    return strict_json({
        "score": grade.score,
        "max_score": grade.max_score,
        "execution_time": round(grade.execution_time_s, 3),
        "output": "\n".join(grade.problems),
        "tests": tests,
        "extra": {
            "student_id": grade.student_id,
            "assignment": grade.assignment,
            "parts": [{"name": p.name, "points": p.points, "max_points": p.max_points}
                      for p in grade.parts],
            "problems": list(grade.problems),
            "skipped_statements": list(grade.skipped_statements),
            "unassigned_tests": [asdict(t) for t in grade.unassigned],
            "sandbox_notes": list(grade.sandbox_notes),
        },
    })


def case_shares(points: float, cases: Sequence[TestOutcome]) -> list[float]:
    """Each case's maximum points within a part worth `points`.

    The part's points are split evenly between its test functions, and a parametrised
    function's share evenly between its cases. The one rule scoring and results.json share.
    """
    per_function: dict[str, int] = {}
    for outcome in cases:
        per_function[outcome.name] = per_function.get(outcome.name, 0) + 1
    if not per_function:
        return []
    function_share = points / len(per_function)
    return [function_share / per_function[outcome.name] for outcome in cases]
