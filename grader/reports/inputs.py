"""What a report is rendered from: one `ReportInput` per student, free of any database.

Adapters build it from a gradebook row (`from_grade_row`), from a fresh grading run
(`from_graded`) or from a ``results.json`` that `grader autograde` wrote
(`from_results_json`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from grader.config import AssignmentConfig
from grader.results.records import Grade, PartGrade, TestOutcome


@dataclass(frozen=True)
class ReportInput:
    """One student's line of the gradebook, as a report needs it.

    Attributes:
        student_id: The student's id.
        display_name: The student's name, or "".
        grade: The latest grade, or None when the student did not submit.
        submitted_at: When the graded submission was made (timezone-aware), or None.
        late_days: Started days after the due date (0: on time).
        late_multiplier: The factor the late policy applied, in [0, 1].
        final_score: The score that counts (late policy and override applied); None:
            computed from the grade, the multiplier and the override.
        override_points: An instructor's override of the final score, or None.
        override_reason: The instructor's note with the override.
        problems: Intake problems (missing files, unreadable notebooks); default the grade's.
        skipped_statements: Top-level statements not run at import; default the grade's.
        notes: Adjustments that did not stop grading (a renamed file, a converted notebook).
        output_excerpt: What the submission printed, cut short, or "".
        submission_id: The gradebook's id of the graded submission, or "".
    """

    student_id: str
    display_name: str = ""
    grade: Grade | None = None
    submitted_at: datetime | None = None
    late_days: float = 0
    late_multiplier: float = 1.0
    final_score: float | None = None
    override_points: float | None = None
    override_reason: str = ""
    problems: tuple[str, ...] | None = None
    skipped_statements: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()
    output_excerpt: str = ""
    submission_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def submitted(self) -> bool:
        return self.grade is not None

    @property
    def intake_problems(self) -> tuple[str, ...]:
        if self.problems is not None:
            return tuple(self.problems)
        return self.grade.problems if self.grade else ()

    @property
    def skipped(self) -> tuple[str, ...]:
        if self.skipped_statements is not None:
            return tuple(self.skipped_statements)
        return self.grade.skipped_statements if self.grade else ()

    @property
    def score_after_penalty(self) -> float:
        """The grade's score with the late policy applied (before any override)."""
        if self.grade is None:
            return 0.0
        return round(self.grade.score * self.late_multiplier, 6)

    @property
    def final(self) -> float:
        """The score that counts."""
        if self.final_score is not None:
            return float(self.final_score)
        if self.override_points is not None:
            return float(self.override_points)
        return self.score_after_penalty


def from_graded(graded: Any, *, config: AssignmentConfig | None = None,
                display_name: str = "") -> ReportInput:
    """A `ReportInput` for a `GradedSubmission` of `grader.grading.run.grade_path`.

    Lateness is computed from the submission's time and the assignment's late policy
    when `config` is given.
    """
    submission, grade = graded.submission, graded.grade
    submitted_at = submission.submitted_at
    multiplier, days = 1.0, 0
    if config is not None and submitted_at is not None:
        multiplier, days = late_terms(config, submitted_at)
    return ReportInput(
        student_id=grade.student_id,
        display_name=display_name or submission.display_name,
        grade=grade,
        submitted_at=submitted_at,
        late_days=days,
        late_multiplier=multiplier,
        notes=tuple(submission.notes),
    )


def late_terms(config: AssignmentConfig, submitted_at: datetime) -> tuple[float, int]:
    """(multiplier, started days late) under the assignment's late policy."""
    late_by = submitted_at - config.due - timedelta(minutes=config.late.grace_minutes)
    days = max(0, math.ceil(late_by / timedelta(days=1))) if late_by > timedelta(0) else 0
    return config.late.multiplier(submitted_at, config.due), days


def from_grade_row(row: Any) -> ReportInput:
    """A `ReportInput` for a gradebook `GradeRow` (duck-typed: read by attribute name).

    The row's ``override`` may be None, a number, or an object with ``points`` (or
    ``score``) and ``reason`` (or ``note``).
    """
    override = getattr(row, "override", None)
    points, reason = None, ""
    if isinstance(override, (int, float)):
        points = float(override)
    elif override is not None:
        points = _first_attr(override, ("points", "score", "final_score"))
        reason = str(_first_attr(override, ("reason", "note", "comment")) or "")
    grade = getattr(row, "grade", None)
    sid = getattr(row, "submission_id", None)
    return ReportInput(
        student_id=row.student_id,
        display_name=getattr(row, "display_name", "") or "",
        grade=grade,
        submitted_at=getattr(row, "submitted_at", None),
        late_days=getattr(row, "late_days", 0) or 0,
        late_multiplier=_float(getattr(row, "late_multiplier", 1.0), 1.0),
        final_score=getattr(row, "final_score", None),
        override_points=None if points is None else float(points),
        override_reason=reason,
        problems=_tuple_or_none(getattr(row, "problems", None)),
        skipped_statements=_tuple_or_none(getattr(row, "skipped_statements", None)),
        notes=tuple(getattr(row, "notes", ()) or ()),
        submission_id="" if sid is None else str(sid),
    )


def from_results_json(data: dict[str, Any] | Path, *, config: AssignmentConfig | None = None
                      ) -> ReportInput:
    """A `ReportInput` for a ``results.json`` written by `grader autograde`.

    The file holds the tests with their part, status, message and figures under
    ``extra``; part points and maxima come from ``extra.parts``.
    """
    if isinstance(data, Path):
        data = json.loads(data.read_text(encoding="utf-8"))
    extra = data.get("extra", {})
    by_part: dict[str, list[TestOutcome]] = {}
    for test in data.get("tests", []):
        test_extra = test.get("extra", {})
        part = test_extra.get("part") or test.get("name", "").split(": ", 1)[0]
        case = test.get("name", "").split(": ", 1)[-1]
        max_score = float(test.get("max_score") or 0.0)
        fraction = float(test.get("score") or 0.0) / max_score if max_score else (
            1.0 if test.get("status") == "passed" else 0.0)
        by_part.setdefault(part, []).append(TestOutcome(
            name=case.split("[", 1)[0], case=case,
            status=test_extra.get("status") or test.get("status", "failed"),
            fraction=min(max(fraction, 0.0), 1.0), message=test.get("output", "") or "",
            duration_s=float(test_extra.get("duration_s") or 0.0),
            figures=test_extra.get("figures") or {},
            kind=str(test_extra.get("kind") or ""),
            diagnosis=str(test_extra.get("diagnosis") or "")))
    parts = tuple(PartGrade(p["name"], float(p["points"]), float(p["max_points"]),
                            tuple(by_part.get(p["name"], ()))) for p in extra.get("parts", []))
    unassigned = tuple(TestOutcome(**{k: v for k, v in t.items()
                                      if k in TestOutcome.__dataclass_fields__})
                       for t in extra.get("unassigned_tests", []))
    grade = Grade(student_id=str(extra.get("student_id", "")),
                  assignment=str(extra.get("assignment", "")), parts=parts,
                  execution_time_s=float(data.get("execution_time") or 0.0),
                  problems=tuple(extra.get("problems", ())),
                  skipped_statements=tuple(extra.get("skipped_statements", ())),
                  unassigned=unassigned)
    submitted_at = None
    if extra.get("submitted_at"):
        try:
            submitted_at = datetime.fromisoformat(str(extra["submitted_at"]))
        except ValueError:
            submitted_at = None
    multiplier, days = 1.0, 0
    if config is not None and submitted_at is not None and submitted_at.tzinfo is not None:
        multiplier, days = late_terms(config, submitted_at)
    return ReportInput(student_id=grade.student_id, display_name=str(extra.get(
        "display_name", "")), grade=grade, submitted_at=submitted_at, late_days=days,
        late_multiplier=multiplier)


def _first_attr(obj: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _tuple_or_none(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)
