"""The gradebook: graded submissions in, rows for reports and exports out.

Decisions:

- `record` writes one submission in one transaction: the assignment and student rows, the
  submission, its part grades, its test results and its grade commit together or not at
  all, so an interrupted batch leaves each submission fully graded or untouched.
- A submission is identified by its content hash (sha256 over the sorted file names and
  file hashes). Recording the same content again replaces that submission's results in
  place; recording new content adds a submission and marks the student's others for the
  assignment superseded (kept, with `superseded_by`), so the history stays.
- The current submission is the one recorded last, whatever its submission time: grading
  is what the instructor asked for last.
- Lateness is computed when recording, from `config.late` and the submission time, and
  stored (late days and the multiplier), so a later change of policy does not silently
  change a grade already given; re-grading applies the new policy.
- An override belongs to (assignment, student) and replaces the final score; it survives
  re-grading and new submissions until it is cleared.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from grader.config import AssignmentConfig, LatePolicy
from grader.gradebook.models import (
    AssignmentModel,
    Base,
    GradeModel,
    OverrideModel,
    PartGradeModel,
    StudentModel,
    SubmissionModel,
    TestResultModel,
)
from grader.intake import Submission, lateness_time
from grader.results.records import Grade, PartGrade, TestOutcome, case_shares

DEFAULT_DB = "gradebook.db"
_LISTED = 20  # how many known names an error message lists


class GradebookError(LookupError):
    """An unknown student or assignment, or a database that cannot be used; the message
    names what was asked for and lists what exists."""


@dataclass(frozen=True)
class StudentInfo:
    id: str
    display_name: str


@dataclass(frozen=True)
class AssignmentInfo:
    id: str
    title: str
    due: datetime | None
    max_points: float


@dataclass(frozen=True)
class Override:
    """An instructor's final score for a student on an assignment, with the reason."""

    assignment_id: str
    student_id: str
    points: float
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class GradeRow:
    """A student's current grade on an assignment.

    Attributes:
        student_id, display_name: the student.
        submitted_at: the submission time (UTC), None when unknown.
        late_days: started days late after the grace period (0 when on time).
        late_multiplier: the factor the late policy applied, in [0, 1].
        grade: the `Grade` rebuilt from the stored rows (parts, tests, messages, figures).
        override: the instructor's override, or None.
        final_score: the override's points if any, else score * late_multiplier.
        submission_id: the stored submission's id.
    """

    student_id: str
    display_name: str
    submitted_at: datetime | None
    late_days: int
    late_multiplier: float
    grade: Grade
    override: Override | None
    final_score: float
    submission_id: int

    @property
    def score(self) -> float:
        return self.grade.score

    @property
    def max_score(self) -> float:
        return self.grade.max_score


@dataclass(frozen=True)
class SubmissionInfo:
    """One stored submission (an entry of a student's history)."""

    submission_id: int
    assignment_id: str
    student_id: str
    content_hash: str
    files: Mapping[str, str]
    submitted_at: datetime | None
    graded_at: datetime
    late_days: int
    late_multiplier: float
    score: float
    max_score: float
    final_score: float
    superseded: bool
    superseded_by: int | None
    source: str


def content_hash(files: Mapping[str, str]) -> str:
    """sha256 over the sorted (file name, file sha256) pairs: what identifies a submission."""
    listing = "".join(f"{name}\0{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def late_days(policy: LatePolicy, submitted_at: datetime | None, due: datetime) -> int:
    """Started days after the due date and the grace period; 0 when on time or unknown."""
    if submitted_at is None:
        return 0
    late_by = submitted_at - due - timedelta(minutes=policy.grace_minutes)
    if late_by <= timedelta(0):
        return 0
    return math.ceil(late_by / timedelta(days=1))


def database_url(url_or_path: str | Path | None = None) -> str:
    """A SQLAlchemy URL: a URL as given, a path as SQLite, None as ./gradebook.db.

    `postgresql://` without a driver gets psycopg 3 (the driver this project installs).
    """
    if url_or_path is None:
        url_or_path = Path(DEFAULT_DB)
    if isinstance(url_or_path, Path) or "://" not in url_or_path:
        return f"sqlite:///{Path(url_or_path).expanduser().resolve()}"
    if url_or_path.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url_or_path.split("://", 1)[1]
    return url_or_path


def open_gradebook(url_or_path: str | Path | None = None) -> Gradebook:
    """Opens (and creates when needed) a gradebook.

    Args:
        url_or_path: any SQLAlchemy URL (``postgresql+psycopg://user@host/db``,
            ``sqlite:///path``) or a file path for SQLite; default: ``gradebook.db`` in
            the current folder.

    Returns:
        The `Gradebook`; its tables exist.

    Raises:
        GradebookError: if the database cannot be reached or the URL is not one.
    """
    url = database_url(url_or_path)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError and others
        raise GradebookError(f"not a database URL or path: {url_or_path!r} ({exc})") from None
    kwargs: dict[str, Any] = {"json_serializer": _to_json}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 60}  # parallel graders wait for the write lock
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        Base.metadata.create_all(engine)
        add_missing_columns(engine)
    except Exception as exc:  # noqa: BLE001 - the driver's own errors, reported in one line
        engine.dispose()
        shown = parsed.render_as_string(hide_password=True)
        raise GradebookError(f"cannot open the gradebook at {shown}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    return Gradebook(engine)


class Gradebook:
    """Graded submissions of one course, in any database SQLAlchemy reaches."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------

    def record(self, config: AssignmentConfig, submission: Submission, grade: Grade, *,
               graded_at: datetime | None = None) -> int:
        """Stores one graded submission in one transaction.

        Args:
            config: the assignment (title, due date, points, late policy).
            submission: the intake's result (student, files and their hashes, time).
            grade: the grade `run_suite` gave it.
            graded_at: when it was graded; default: now.

        Returns:
            The submission's id. The same content recorded again keeps its id.
        """
        graded_at = graded_at or datetime.now(timezone.utc)
        digest = content_hash(submission.files)
        # One rule for the time lateness is charged from (Canvas's LATE flag included).
        charged = lateness_time(submission, config.due, config.late.grace_minutes)
        multiplier = (config.late.multiplier(charged, config.due)
                      if charged is not None else 1.0)
        days = late_days(config.late, charged, config.due)
        with self._sessions.begin() as session:
            _upsert_assignment(session, config)
            _upsert_student(session, submission.student_id, submission.display_name)
            row = session.scalars(
                select(SubmissionModel).where(
                    SubmissionModel.assignment_id == config.id,
                    SubmissionModel.student_id == submission.student_id,
                    SubmissionModel.content_hash == digest,
                ).order_by(SubmissionModel.id.desc()).limit(1)).first()
            if row is None:
                row = SubmissionModel(assignment_id=config.id,
                                      student_id=submission.student_id,
                                      content_hash=digest)
                session.add(row)
            else:  # the same files again: replace their results
                row.parts.clear()
                row.tests.clear()
                row.grade = None
                session.flush()  # old rows out before the new ones go in
            row.files = dict(submission.files)
            row.submitted_at = submission.submitted_at
            row.late_days = days
            row.graded_at = graded_at
            row.source = str(submission.source)
            row.layout = submission.layout
            row.problems = list(grade.problems)
            row.notes = list(submission.notes)
            row.skipped_statements = list(grade.skipped_statements)
            row.execution_time_s = float(grade.execution_time_s)
            row.superseded = False
            row.superseded_by = None
            session.flush()  # the row's id, for the rows below
            for older in session.scalars(select(SubmissionModel).where(
                    SubmissionModel.assignment_id == config.id,
                    SubmissionModel.student_id == submission.student_id,
                    SubmissionModel.id != row.id)):
                if not older.superseded or older.superseded_by is None:
                    older.superseded, older.superseded_by = True, row.id
            row.parts.extend(PartGradeModel(position=i, name=part.name,
                                            points=float(part.points),
                                            max_points=float(part.max_points))
                             for i, part in enumerate(grade.parts))
            row.tests.extend(_test_rows(grade))
            score = grade.score
            row.grade = GradeModel(score=score, max_score=grade.max_score,
                                   late_multiplier=multiplier,
                                   final_score=round(score * multiplier, 6))
            session.flush()
            return row.id

    def add_students(self, students: Iterable[tuple[str, str]]) -> int:
        """Adds a roster (id, display name); names of known students are updated.

        Returns:
            How many students were new.
        """
        new = 0
        with self._sessions.begin() as session:
            for student_id, name in students:
                new += _upsert_student(session, str(student_id), str(name), rename=True)
        return new

    def set_override(self, assignment_id: str, student_id: str, points: float | None,
                     reason: str = "") -> Override | None:
        """Sets (or, with points=None, clears) the instructor's final score.

        Raises:
            GradebookError: for an unknown assignment or student.
        """
        with self._sessions.begin() as session:
            self._check_assignment(session, assignment_id)
            self._check_student(session, student_id)
            row = session.scalars(select(OverrideModel).where(
                OverrideModel.assignment_id == assignment_id,
                OverrideModel.student_id == student_id)).first()
            if points is None:
                if row is not None:
                    session.delete(row)
                return None
            if row is None:
                row = OverrideModel(assignment_id=assignment_id, student_id=student_id)
                session.add(row)
            row.points, row.reason = float(points), reason
            row.created_at = datetime.now(timezone.utc)
            session.flush()
            return _override(row)

    # --- reading -----------------------------------------------------------------------

    def students(self) -> list[StudentInfo]:
        with self._sessions() as session:
            return [StudentInfo(s.id, s.display_name) for s in
                    session.scalars(select(StudentModel).order_by(StudentModel.id))]

    def assignments(self) -> list[AssignmentInfo]:
        with self._sessions() as session:
            return [AssignmentInfo(a.id, a.title, a.due, a.max_points) for a in
                    session.scalars(select(AssignmentModel).order_by(AssignmentModel.id))]

    def latest(self, assignment_id: str) -> list[GradeRow]:
        """Each student's current (not superseded) graded submission, by student id.

        Raises:
            GradebookError: for an assignment the gradebook does not know.
        """
        with self._sessions() as session:
            self._check_assignment(session, assignment_id)
            overrides = self._overrides(session, assignment_id)
            rows = session.scalars(select(SubmissionModel).where(
                SubmissionModel.assignment_id == assignment_id,
                SubmissionModel.superseded.is_(False),
            ).order_by(SubmissionModel.student_id, SubmissionModel.id.desc()))
            result: dict[str, GradeRow] = {}
            for row in rows:
                if row.student_id not in result and row.grade is not None:
                    result[row.student_id] = _grade_row(row, overrides.get(row.student_id))
            return list(result.values())

    def missing(self, assignment_id: str) -> list[StudentInfo]:
        """Known students (the roster) with no graded submission for the assignment."""
        graded = {row.student_id for row in self.latest(assignment_id)}
        return [s for s in self.students() if s.id not in graded]

    def overrides(self, assignment_id: str) -> dict[str, Override]:
        """Student id -> override, for the assignment."""
        with self._sessions() as session:
            self._check_assignment(session, assignment_id)
            return self._overrides(session, assignment_id)

    def history(self, assignment_id: str, student_id: str) -> list[SubmissionInfo]:
        """Every stored submission of a student for an assignment, oldest recorded first.

        Raises:
            GradebookError: for an unknown assignment or student.
        """
        with self._sessions() as session:
            self._check_assignment(session, assignment_id)
            self._check_student(session, student_id)
            rows = session.scalars(select(SubmissionModel).where(
                SubmissionModel.assignment_id == assignment_id,
                SubmissionModel.student_id == student_id,
            ).order_by(SubmissionModel.graded_at, SubmissionModel.id))
            return [_submission_info(row) for row in rows]

    def is_graded(self, assignment_id: str, student_id: str, content_hash: str) -> bool:
        """Whether these exact files of this student are already graded (resumable batches)."""
        with self._sessions() as session:
            found = session.scalars(select(SubmissionModel.id).join(GradeModel).where(
                SubmissionModel.assignment_id == assignment_id,
                SubmissionModel.student_id == student_id,
                SubmissionModel.content_hash == content_hash).limit(1)).first()
            return found is not None

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    def _overrides(session: Session, assignment_id: str) -> dict[str, Override]:
        return {o.student_id: _override(o) for o in session.scalars(
            select(OverrideModel).where(OverrideModel.assignment_id == assignment_id))}

    @staticmethod
    def _check_assignment(session: Session, assignment_id: str) -> None:
        if session.get(AssignmentModel, assignment_id) is None:
            known = list(session.scalars(select(AssignmentModel.id).order_by(
                AssignmentModel.id)))
            raise GradebookError(f"unknown assignment `{assignment_id}`; the gradebook "
                                 f"has: {_listing(known)}")

    @staticmethod
    def _check_student(session: Session, student_id: str) -> None:
        if session.get(StudentModel, student_id) is None:
            known = list(session.scalars(select(StudentModel.id).order_by(StudentModel.id)))
            raise GradebookError(f"unknown student `{student_id}`; the gradebook has: "
                                 f"{_listing(known)}")


def _listing(names: Sequence[str]) -> str:
    if not names:
        return "none yet"
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else "")


def _to_json(value: Any) -> str:
    """JSON for the JSON columns; numpy scalars and arrays (in figures) become lists."""
    def plain(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        raise TypeError(f"cannot store a {type(obj).__name__} in the gradebook; figures "
                        f"must be plain data. Received: {obj!r:.80}")
    return json.dumps(value, default=plain)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _upsert_assignment(session: Session, config: AssignmentConfig) -> None:
    row = session.get(AssignmentModel, config.id)
    if row is None:
        row = AssignmentModel(id=config.id)
        session.add(row)
    row.title, row.due, row.max_points = config.title, config.due, float(config.total_points)


def _upsert_student(session: Session, student_id: str, name: str, *,
                    rename: bool = False) -> int:
    row = session.get(StudentModel, student_id)
    if row is None:
        session.add(StudentModel(id=student_id, display_name=name))
        session.flush()
        return 1
    if name and (rename or not row.display_name):
        row.display_name = name
    return 0


def _test_rows(grade: Grade) -> list[TestResultModel]:
    rows = []
    groups: list[tuple[str | None, Sequence[TestOutcome], list[float]]] = [
        (part.name, part.tests, case_shares(part.max_points, part.tests)) for part in grade.parts]
    groups.append((None, grade.unassigned, [0.0] * len(grade.unassigned)))
    for part, outcomes, shares in groups:
        for outcome, max_points in zip(outcomes, shares, strict=True):
            rows.append(TestResultModel(
                position=len(rows), part=part, name=outcome.name, case=outcome.case,
                status=outcome.status, fraction=float(outcome.fraction),
                points=round(max_points * outcome.fraction, 6),
                max_points=round(max_points, 6), message=outcome.message,
                duration_s=float(outcome.duration_s), figures=dict(outcome.figures),
                kind=outcome.kind or None, diagnosis=outcome.diagnosis or None))
    return rows


def _outcome(row: TestResultModel) -> TestOutcome:
    return TestOutcome(row.name, row.case, row.status, row.fraction, row.message,
                       row.duration_s, dict(row.figures or {}), row.kind or "",
                       row.diagnosis or "")


ADDED_COLUMNS = {"test_results": ("kind", "diagnosis")}
"""Nullable columns added after a gradebook may have been created (no migrations yet)."""


def add_missing_columns(engine: Engine) -> None:
    """Adds `ADDED_COLUMNS` to an older gradebook's tables (``ALTER TABLE ... ADD COLUMN``).

    Stands in for migrations until the gradebook has them: each column is nullable, so
    old rows read as "no kind, no diagnosis".
    """
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    for table_name, columns in ADDED_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table_name)}
        table = Base.metadata.tables[table_name]
        with engine.begin() as connection:
            for name in columns:
                if name not in present:
                    kind = table.c[name].type.compile(dialect=engine.dialect)
                    connection.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}"))


def _rebuilt_grade(row: SubmissionModel) -> Grade:
    by_part: dict[str | None, list[TestOutcome]] = {}
    for test in row.tests:
        by_part.setdefault(test.part, []).append(_outcome(test))
    parts = tuple(PartGrade(p.name, p.points, p.max_points, tuple(by_part.get(p.name, ())))
                  for p in row.parts)
    return Grade(row.student_id, row.assignment_id, parts, row.execution_time_s,
                 tuple(row.problems or ()), tuple(row.skipped_statements or ()),
                 tuple(by_part.get(None, ())))


def _override(row: OverrideModel) -> Override:
    return Override(row.assignment_id, row.student_id, row.points, row.reason, row.created_at)


def _grade_row(row: SubmissionModel, override: Override | None) -> GradeRow:
    assert row.grade is not None
    final = override.points if override is not None else row.grade.final_score
    return GradeRow(
        student_id=row.student_id, display_name=row.student.display_name,
        submitted_at=row.submitted_at, late_days=row.late_days,
        late_multiplier=row.grade.late_multiplier, grade=_rebuilt_grade(row),
        override=override, final_score=final, submission_id=row.id)


def _submission_info(row: SubmissionModel) -> SubmissionInfo:
    grade = row.grade
    return SubmissionInfo(
        submission_id=row.id, assignment_id=row.assignment_id, student_id=row.student_id,
        content_hash=row.content_hash, files=dict(row.files), submitted_at=row.submitted_at,
        graded_at=row.graded_at, late_days=row.late_days,
        late_multiplier=grade.late_multiplier if grade else 1.0,
        score=grade.score if grade else 0.0, max_score=grade.max_score if grade else 0.0,
        final_score=grade.final_score if grade else 0.0, superseded=row.superseded,
        superseded_by=row.superseded_by, source=row.source)
