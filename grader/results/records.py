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
from datetime import datetime
from typing import Any

from grader import grade_record
from grader.grade_record import GradeRecord
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


RESULTS_VERSION = 2
"""The shape `to_results_json` writes: Gradescope's documented fields, ours under
``extra_data`` (version 1, before issue 11, put them under ``extra``; still read)."""


def to_results_json(grade: Grade, record: GradeRecord | None = None, *,
                    public_parts: Sequence[str] | frozenset[str] | set[str] = (),
                    display_name: str = "", notes: Sequence[str] = (),
                    hidden_visibility: str = "after_due_date") -> dict[str, Any]:
    """The one results.json writer: Gradescope's shape, valid against the shipped schema.

    Every writer calls this (`grader autograde`, `grader export --format gradescope`, the
    Gradescope autograder bundle); `read_results_json` reads it back.

    Args:
        grade: the grade.
        record: its grade record (lateness, extension, override, `grade_record`); None:
            the tests' score counts as it is (Gradescope applies its own late policy).
        public_parts: parts whose tests students see at once (``visible``); the others
            are `hidden_visibility`.
        display_name: the student's name.
        notes: the intake's notes (a renamed file, a converted notebook).
        hidden_visibility: Gradescope's visibility for hidden tests.

    Returns:
        A dict valid against ``grader/schemas/gradescope_results.schema.json``: the top
        score is the final score, each test's score its share of its part (a part's points
        are split evenly between its test functions, a parametrised function's share
        evenly between its cases), and nn-grader's own fields are under ``extra_data``.
    """
    record = record or GradeRecord(score=grade.score, max_score=grade.max_score)
    tests = []
    for p, part in enumerate(grade.parts, start=1):
        shown = part.name in public_parts
        for t, (outcome, max_score) in enumerate(zip(
                part.tests, case_shares(part.max_points, part.tests), strict=True), start=1):
            tests.append({
                "name": f"{part.name}: {outcome.case}",
                "number": f"{p}.{t}",
                "score": round(max_score * outcome.fraction, 6),
                "max_score": round(max_score, 6),
                "status": PASSED if outcome.status == PASSED else FAILED,
                "output": outcome.message,
                "tags": [part.name, "public" if shown else "hidden"],
                "visibility": "visible" if shown else hidden_visibility,
                "extra_data": {"part": part.name, "test": outcome.name,
                               "status": outcome.status, "fraction": outcome.fraction,
                               "kind": outcome.kind, "diagnosis": outcome.diagnosis,
                               "duration_s": outcome.duration_s,
                               "figures": outcome.figures},
            })
    return strict_json({
        "score": record.final,
        "execution_time": round(max(0.0, grade.execution_time_s), 3),
        "output": "\n".join(summary_lines(grade, record)),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "version": RESULTS_VERSION,
            "student_id": grade.student_id,
            "display_name": display_name,
            "assignment": grade.assignment,
            "tests_score": grade.score,
            "max_score": grade.max_score,
            "execution_time_s": grade.execution_time_s,
            "parts": [{"name": p.name, "points": p.points, "max_points": p.max_points}
                      for p in grade.parts],
            "problems": list(grade.problems),
            "skipped_statements": list(grade.skipped_statements),
            "notes": list(notes),
            "unassigned_tests": [asdict(t) for t in grade.unassigned],
            "sandbox_notes": list(grade.sandbox_notes),
            "submitted_at": _iso(record.submitted_at),
            "charged_at": _iso(record.charged_at),
            "late_days": record.late_days,
            "late_multiplier": record.late_multiplier,
            "extension_days": record.extension_days,
            "extension_reason": record.extension_reason,
            "override": record.override_points,
            "override_reason": record.override_reason,
            "final_score": record.final,
        },
    })


def summary_lines(grade: Grade, record: GradeRecord) -> list[str]:
    """The submission-level text of a results.json: problems, skipped code, the record."""
    lines = list(grade.problems)
    if grade.skipped_statements:
        lines.append("Statements not run at import (top-level code is skipped):")
        lines.extend(f"  {s}" for s in grade.skipped_statements)
    if record.extension_days:
        lines.append(extension_note(record.extension_days, record.extension_reason))
    # The notes' words live with the rule (`grader.grade_record`), in the reader's language.
    lines += [note for note in (grade_record.late_note(record),
                                grade_record.override_note(record)) if note]
    return lines


@dataclass(frozen=True)
class ResultsJson:
    """What `read_results_json` takes from a results.json: the grade and its record."""

    grade: Grade
    record: GradeRecord
    display_name: str = ""
    notes: tuple[str, ...] = ()


def read_results_json(data: Any, *, config: Any = None) -> ResultsJson:
    """The one results.json reader (both shapes `to_results_json` ever wrote).

    Nothing in the file is trusted (it is a copy; the gradebook is the record, and a file
    on disk can be edited): each test's credit is clamped to [0, 1]; with the assignment
    (`config`), parts and their points come from assignment.toml and every part's points
    are recomputed from its tests' credit (a test of an unknown part earns nothing);
    lateness is recomputed by `grade_record.lateness` from the stored time and extension
    (a naive or unreadable time is unknown), and a stored multiplier can only lower it;
    an override is never read (overrides live in the gradebook). Text fields are strings.

    Args:
        data: the parsed JSON.
        config: the assignment (`grader.config.AssignmentConfig`), or None.

    Raises:
        ValueError: when `data` is not a JSON object.
    """
    from grader import grade_record

    if not isinstance(data, Mapping):
        raise ValueError(f"a results.json holds a JSON object; received a "
                         f"{type(data).__name__}")
    extra = data.get("extra_data")
    extra = extra if isinstance(extra, Mapping) else data.get("extra")
    extra = extra if isinstance(extra, Mapping) else {}
    by_part: dict[str, list[TestOutcome]] = {}
    tests = data.get("tests")
    for test in tests if isinstance(tests, list) else ():
        if not isinstance(test, Mapping):
            continue
        test_extra = test.get("extra_data")
        test_extra = test_extra if isinstance(test_extra, Mapping) else test.get("extra")
        test_extra = test_extra if isinstance(test_extra, Mapping) else {}
        label = _text(test.get("name"))
        part = _text(test_extra.get("part")) or label.split(": ", 1)[0]
        case = label.split(": ", 1)[-1]
        if "fraction" in test_extra:
            fraction = unit_fraction(test_extra.get("fraction"))
        else:
            top = _number(test.get("max_score"), 0.0)
            fraction = (unit_fraction(_number(test.get("score"), 0.0) / top) if top > 0 else
                        1.0 if test.get("status") == PASSED else 0.0)
        status = _text(test_extra.get("status")) or _text(test.get("status")) or FAILED
        figures = test_extra.get("figures")
        by_part.setdefault(part, []).append(TestOutcome(
            name=_text(test_extra.get("test")) or case.split("[", 1)[0], case=case,
            status=status if status in (PASSED, FAILED, ERROR, SKIPPED) else FAILED,
            fraction=fraction, message=_text(test.get("output")),
            duration_s=max(0.0, _number(test_extra.get("duration_s"), 0.0)),
            figures=strict_json(figures) if isinstance(figures, Mapping) else {},
            kind=_text(test_extra.get("kind")), diagnosis=_text(test_extra.get("diagnosis"))))
    if config is not None:
        claimed = [(part.name, float(part.points)) for part in config.parts]
    else:
        listed = extra.get("parts")
        claimed = [(_text(p.get("name")), max(0.0, _number(p.get("max_points"), 0.0)))
                   for p in (listed if isinstance(listed, list) else ())
                   if isinstance(p, Mapping)]
    parts = tuple(PartGrade(name, earned(points, by_part.get(name, [])), points,
                            tuple(by_part.get(name, ()))) for name, points in claimed)
    known = {name for name, _ in claimed}
    stray = [outcome for name, outcomes in by_part.items() if name not in known
             for outcome in outcomes]
    unassigned_listed = extra.get("unassigned_tests")
    unassigned = tuple(stray) + tuple(
        TestOutcome(name=_text(t.get("name")), case=_text(t.get("case")),
                    status=_text(t.get("status")) or FAILED, fraction=0.0,
                    message=_text(t.get("message")), kind=_text(t.get("kind")))
        for t in (unassigned_listed if isinstance(unassigned_listed, list) else ())
        if isinstance(t, Mapping))
    assignment = config.id if config is not None else _text(extra.get("assignment"))
    execution = extra.get("execution_time_s", data.get("execution_time"))
    grade = Grade(student_id=_text(extra.get("student_id")), assignment=assignment,
                  parts=parts, execution_time_s=max(0.0, _number(execution, 0.0)),
                  problems=_texts(extra.get("problems")),
                  skipped_statements=_texts(extra.get("skipped_statements")),
                  unassigned=unassigned, sandbox_notes=_texts(extra.get("sandbox_notes")))
    submitted_at = _moment(extra.get("submitted_at"))
    charged_at = _moment(extra.get("charged_at")) or submitted_at
    extension_days = min(max(_number(extra.get("extension_days"), 0.0), 0.0),
                         grade_record.MAX_EXTENSION_DAYS)
    late_days, multiplier = 0, 1.0
    if config is not None:
        late = grade_record.lateness(config.late, config.due, charged_at, extension_days)
        late_days, multiplier = late.late_days, late.multiplier
        stored = _number(extra.get("late_multiplier"), multiplier)
        multiplier = min(multiplier, unit_fraction(stored))
    record = GradeRecord(score=grade.score, max_score=grade.max_score,
                         submitted_at=submitted_at, charged_at=charged_at, late_days=late_days,
                         late_multiplier=multiplier, extension_days=extension_days,
                         extension_reason=_text(extra.get("extension_reason"))
                         if extension_days else "")
    return ResultsJson(grade, record, _text(extra.get("display_name")),
                       _texts(extra.get("notes")))


def earned(points: float, cases: Sequence[TestOutcome]) -> float:
    """A part's points from its cases' credit: the one rule scoring and the reader share."""
    shares = case_shares(points, cases)
    return round(sum(share * case.fraction for share, case in zip(shares, cases, strict=True)), 6)


def extension_note(days: float, reason: str) -> str:
    """The sentence a report and a results.json show for an extension."""
    return grade_record.extension_note(days, reason)


def _text(value: Any, limit: int = 100_000) -> str:
    """A string field of a results.json: a string (cut at `limit`), anything else ""."""
    return value[:limit] if isinstance(value, str) else ""


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _number(value: Any, default: float) -> float:
    """A finite number of a results.json, or `default` (booleans and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        number = float(value)
    except OverflowError:
        return default
    return number if math.isfinite(number) else default


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 time with a UTC offset, or None (naive, unreadable, not a string)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


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
