"""What a report is rendered from: one `ReportInput` per student, free of any database.

Adapters build it from a gradebook row (`from_grade_row`), from a fresh grading run
(`from_graded`) or from a ``results.json`` that `grader autograde` wrote
(`from_results_json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from grader import grade_record
from grader.config import AssignmentConfig
from grader.results.records import Grade, extension_note, read_results_json


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
        return grade_record.final_score(self.grade.score, self.late_multiplier)

    @property
    def final(self) -> float:
        """The score that counts."""
        if self.final_score is not None:
            return float(self.final_score)
        if self.grade is None and self.override_points is None:
            return 0.0
        return grade_record.final_score(self.grade.score if self.grade else 0.0,
                                        self.late_multiplier, self.override_points)


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
    """(multiplier, started days late) under the assignment's late policy
    (`grader.grade_record.lateness`, the one rule)."""
    late = grade_record.lateness(config.late, config.due, submitted_at)
    return late.multiplier, late.late_days


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
    """A `ReportInput` for a ``results.json`` (`grader.results.records.read_results_json`,
    the one reader: nothing in the file is trusted, lateness is recomputed)."""
    if isinstance(data, Path):
        data = json.loads(data.read_text(encoding="utf-8"))
    read = read_results_json(data, config=config)
    record = read.record
    return ReportInput(student_id=read.grade.student_id, display_name=read.display_name,
                       grade=read.grade, submitted_at=record.submitted_at,
                       late_days=record.late_days, late_multiplier=record.late_multiplier,
                       final_score=record.final, notes=read.notes + (
                           (extension_note(record.extension_days, record.extension_reason),)
                           if record.extension_days else ()))


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
