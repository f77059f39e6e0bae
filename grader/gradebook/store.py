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
- One grade record (`grader.grade_record`): lateness is computed when recording, from
  `config.late`, the time lateness is charged from and the student's extension, and
  stored (the charged time, the extension, late days and the multiplier), so a later
  change of policy does not silently change a grade already given; re-grading applies the
  new policy, and `extend` recomputes the student's stored lateness at once. The final
  score is `grade_record.final_score` of what is stored, for every reader.
- An override belongs to (assignment, student) and replaces the final score; it survives
  re-grading and new submissions until it is cleared. It lies within 0..the assignment's
  points and has a reason (`grade_record.check_override`); who set it is stored.
- An extension belongs to (assignment, student); every grant is kept (who, when, why) and
  the latest one counts.
- SQLite runs in write-ahead-log mode (`_sqlite_pragmas`): `grader serve`'s pages and
  polls read while workers record grades, and neither waits for the other; writers still
  take turns (a 60 s busy timeout). Synchronous stays FULL: a commit the service answered
  "received" for survives a power cut (one fsync of the log per commit). The log's
  ``-wal``/``-shm`` files sit beside the gradebook while it is open: copy a gradebook that
  nothing has open (or with ``sqlite3 gradebook.db .backup copy.db``).
- The schema is Alembic's (`grader.gradebook.migrations`), brought up to date on open.
- Opening a gradebook that does not exist is an error unless the caller creates it
  (``create=True``: `grader autograde` and `grader roster`), so a mistyped ``--db`` on a
  read verb creates nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from grader import grade_record
from grader.config import AssignmentConfig
from grader.grade_record import GradeRecord, GradeRecordError
from grader.gradebook import migrations
from grader.gradebook.models import (
    AssignmentModel,
    ExtensionModel,
    GradeModel,
    OverrideModel,
    PartGradeModel,
    StudentModel,
    SubmissionModel,
    TestResultModel,
)
from grader.intake import Submission
from grader.results.records import (
    Grade,
    PartGrade,
    TestOutcome,
    case_shares,
    extension_note,
)

DEFAULT_DB = "gradebook.db"
_LISTED = 20  # how many known names an error message lists
# Backends nn-grader is tested on; anything else must have its driver installed.
SUPPORTED = "SQLite (a file path or sqlite:///path) and PostgreSQL (postgresql://user@host/db)"
# A driver module SQLAlchemy could not import -> what to install.
DRIVER_PACKAGES = {
    "psycopg": "pip install 'nn-grader[postgres]'",
    "psycopg2": "pip install psycopg2-binary, or write the URL as postgresql+psycopg://... "
                "and pip install 'nn-grader[postgres]'",
    "MySQLdb": "pip install mysqlclient (or pip install pymysql and write mysql+pymysql://...)",
    "pymysql": "pip install pymysql",
    "pyodbc": "pip install pyodbc",
    "oracledb": "pip install oracledb",
}


class GradebookError(LookupError):
    """An unknown student or assignment, a refused override or extension, or a database
    that cannot be used; the message names what was asked for and lists what exists."""


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
    set_by: str = ""


@dataclass(frozen=True)
class Extension:
    """A `grader extend` grant: the student's due date moves by `days` (0: cleared)."""

    assignment_id: str
    student_id: str
    days: float
    reason: str
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class GradeRow:
    """A student's current grade on an assignment.

    Attributes:
        student_id, display_name: the student.
        submitted_at: the submission time (UTC), None when unknown.
        late_days: started days late after the due date, the extension and the grace
            period (0 when on time).
        late_multiplier: the factor the late policy applied, in [0, 1].
        grade: the `Grade` rebuilt from the stored rows (parts, tests, messages, figures).
        override: the instructor's override, or None.
        final_score: `grade_record.final_score`: the override's points if any, else
            score * late_multiplier.
        submission_id: the stored submission's id.
        extension_days, extension_reason: the extension the lateness was computed with.
        charged_at: the time lateness was charged from.
        notes: adjustments a report shows, as sentences: the intake's (a renamed file, a
            converted notebook) and the extension.
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
    extension_days: float = 0.0
    extension_reason: str = ""
    notes: tuple[str, ...] = ()
    charged_at: datetime | None = None

    @property
    def record(self) -> GradeRecord:
        """The one grade record this row holds (`grader.grade_record`)."""
        return GradeRecord(
            score=self.grade.score, max_score=self.grade.max_score,
            submitted_at=self.submitted_at, charged_at=self.charged_at,
            late_days=self.late_days,
            late_multiplier=self.late_multiplier, extension_days=self.extension_days,
            extension_reason=self.extension_reason,
            override_points=self.override.points if self.override else None,
            override_reason=self.override.reason if self.override else "")

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


def database_url(url_or_path: str | Path | None = None) -> str:
    """A SQLAlchemy URL: a URL as given, a path as SQLite, None as the current course's
    gradebook.db (`grader.course`; ./gradebook.db outside any course).

    `postgresql://` without a driver gets psycopg 3 (the driver this project installs).
    """
    if url_or_path is None:
        from grader.course import find_course  # the course, never the tool's folder

        course = find_course(required=False)
        url_or_path = course.gradebook if course is not None else Path(DEFAULT_DB)
    if isinstance(url_or_path, Path) or "://" not in url_or_path:
        return f"sqlite:///{Path(url_or_path).expanduser().resolve()}"
    if url_or_path.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url_or_path.split("://", 1)[1]
    return url_or_path


def open_gradebook(url_or_path: str | Path | None = None, *, create: bool = True,
                   connections: int | None = None) -> Gradebook:
    """Opens a gradebook, its schema brought up to date by the migrations.

    Args:
        url_or_path: any SQLAlchemy URL (``postgresql+psycopg://user@host/db``,
            ``sqlite:///path``) or a file path for SQLite; default: ``gradebook.db`` in
            the current course (`database_url`).
        create: make the gradebook when there is none (a missing SQLite file, a database
            without our tables); False: that is an error, so a mistyped ``--db`` of a verb
            that only reads creates nothing.
        connections: how many connections the engine may hold at once (its pool); default:
            SQLAlchemy's (5, and 10 more for a moment). A threaded server asks for as many
            as it has threads, so a request never waits for a connection.

    Returns:
        The `Gradebook`; its tables exist and are at the newest revision.

    Raises:
        GradebookError: if the URL is not one, names a database nn-grader has no driver
            for (the message says what to install), cannot be reached, or holds no
            gradebook while `create` is False.
    """
    url = database_url(url_or_path)
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError and others
        raise GradebookError(f"not a database URL or path: {url_or_path!r} ({exc}); expected "
                             f"{SUPPORTED}") from None
    shown = parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    if backend == "sqlite" and database not in ("", ":memory:") and not create \
            and not Path(database).is_file():
        raise GradebookError(_no_gradebook(shown, f"there is no file {database}"))
    kwargs: dict[str, Any] = {"json_serializer": _to_json}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 60}  # parallel graders wait for the write lock
        if create and database not in ("", ":memory:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    if connections is not None and database not in ("", ":memory:"):
        kwargs["pool_size"], kwargs["max_overflow"] = connections, 0
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise GradebookError(f"unsupported database `{parsed.drivername}` in {shown}; nn-grader's "
                             f"gradebook runs on {SUPPORTED}") from None
    except ImportError as exc:  # the dialect is known, its driver is not installed
        module = (exc.name or "").split(".")[0]
        todo = DRIVER_PACKAGES.get(module, f"pip install {module}" if module else
                                   "install its Python driver")
        raise GradebookError(f"the database URL {shown} needs the Python driver "
                             f"`{module or parsed.drivername}`, which is not installed: {todo}. "
                             f"nn-grader is tested on {SUPPORTED}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.begin() as connection:
            fresh = not set(inspect(connection).get_table_names()) & {
                "alembic_version", "students", "submissions"}
            if fresh and not create:
                raise GradebookError(_no_gradebook(shown, "the database holds no gradebook "
                                                   "tables"))
            migrations.upgrade(connection)
    except GradebookError:
        engine.dispose()
        raise
    except Exception as exc:  # noqa: BLE001 - the driver's own errors, reported in one line
        engine.dispose()
        lines = str(exc).strip().splitlines() or [""]
        raise GradebookError(f"cannot open the gradebook at {shown}: "
                             f"{type(exc).__name__}: {lines[0]}") from None
    return Gradebook(engine, created=fresh)


def _no_gradebook(shown: str, why: str) -> str:
    return (f"no gradebook at {shown} ({why}); check --db (a mistyped path creates nothing). "
            "`grader autograde` creates the gradebook when it grades, and `grader roster` "
            "when it adds a class")


class Gradebook:
    """Graded submissions of one course, in any database SQLAlchemy reaches."""

    def __init__(self, engine: Engine, *, created: bool = False) -> None:
        self.engine = engine
        self.created = created  # open_gradebook made its tables just now
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------

    def record(self, config: AssignmentConfig, submission: Submission, grade: Grade, *,
               graded_at: datetime | None = None, session: Session | None = None,
               current: bool = True) -> int:
        """Stores one graded submission in one transaction, with its grade record.

        Lateness comes from `grade_record.submission_lateness` with the student's extension
        in force; the final score from `grade_record.final_score`.

        Args:
            config: the assignment (title, due date, points, late policy).
            submission: the intake's result (student, files and their hashes, time).
            grade: the grade `run_suite` gave it.
            graded_at: when it was graded; default: now.
            session: write inside this session's transaction (the caller commits); the
                queue's completion and its record are one transaction. Default: its own.
            current: False records it already superseded by the student's current
                submission (the service's worker grading an upload older than one already
                recorded: finishing later must not make it the grade); without a current
                one it is recorded as current.

        Returns:
            The submission's id. The same content recorded again keeps its id.
        """
        graded_at = graded_at or datetime.now(timezone.utc)
        digest = content_hash(submission.files)
        with self._transaction(session) as session:
            _upsert_assignment(session, config)
            _upsert_student(session, submission.student_id, submission.display_name)
            extension = _extension_row(session, config.id, submission.student_id)
            late = grade_record.submission_lateness(config, submission,
                                                    extension.days if extension else 0.0)
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
            row.charged_at = late.charged_at
            row.extension_days = late.extension_days
            row.late_days = late.late_days
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
            others = list(session.scalars(select(SubmissionModel).where(
                SubmissionModel.assignment_id == config.id,
                SubmissionModel.student_id == submission.student_id,
                SubmissionModel.id != row.id).order_by(SubmissionModel.id)))
            newest = [other for other in others if not other.superseded]
            if not current and newest:
                row.superseded, row.superseded_by = True, newest[-1].id
            else:
                for older in others:
                    if not older.superseded or older.superseded_by is None:
                        older.superseded, older.superseded_by = True, row.id
            row.parts.extend(PartGradeModel(position=i, name=part.name,
                                            points=float(part.points),
                                            max_points=float(part.max_points))
                             for i, part in enumerate(grade.parts))
            row.tests.extend(_test_rows(grade))
            score = grade.score
            row.grade = GradeModel(score=score, max_score=grade.max_score,
                                   late_multiplier=late.multiplier,
                                   final_score=grade_record.final_score(score, late.multiplier))
            session.flush()
            return row.id

    @contextmanager
    def _transaction(self, session: Session | None) -> Iterator[Session]:
        """`session` as it is (its caller commits), or a new transaction committed at the end."""
        if session is not None:
            yield session
            return
        with self._sessions.begin() as new:
            yield new

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
                     reason: str = "", *, by: str = "") -> Override | None:
        """Sets (or, with points=None, clears) the instructor's final score.

        Raises:
            GradebookError: for an unknown assignment or student, or points outside
                0..the assignment's points, or no reason (`grade_record.check_override`).
        """
        with self._sessions.begin() as session:
            assignment = self._check_assignment(session, assignment_id)
            self._check_student(session, student_id)
            row = session.scalars(select(OverrideModel).where(
                OverrideModel.assignment_id == assignment_id,
                OverrideModel.student_id == student_id)).first()
            if points is None:
                if row is not None:
                    session.delete(row)
                return None
            try:
                value, why = grade_record.check_override(points, assignment.max_points, reason)
            except GradeRecordError as error:
                raise GradebookError(f"{assignment_id}, {student_id}: {error}") from None
            if row is None:
                row = OverrideModel(assignment_id=assignment_id, student_id=student_id)
                session.add(row)
            row.points, row.reason, row.set_by = value, why, by[:200] or None  # column width
            row.created_at = datetime.now(timezone.utc)
            session.flush()
            return _override(row)

    def extend(self, config: AssignmentConfig, student_id: str, days: float, reason: str, *,
               by: str) -> Extension:
        """Grants a student an extension (0 days clears it) and recomputes their lateness.

        The grant is kept beside the earlier ones (who, when, why); every stored submission
        of the student for the assignment gets its late days, multiplier and final score
        again from `grade_record.lateness`, so exports and reports show the new grade at once.

        Raises:
            GradebookError: for a student the gradebook does not know (import the roster
                first) or days/reason out of bounds (`grade_record.check_extension`).
        """
        try:
            value, why = grade_record.check_extension(days, reason)
        except GradeRecordError as error:
            raise GradebookError(f"{config.id}, {student_id}: {error}") from None
        with self._sessions.begin() as session:
            self._check_student(session, student_id, hint="add the class with `grader roster "
                                "ROSTER.csv` first")
            _upsert_assignment(session, config)
            row = ExtensionModel(assignment_id=config.id, student_id=student_id, days=value,
                                 reason=why, granted_by=by[:200] or "unknown",
                                 granted_at=datetime.now(timezone.utc))
            session.add(row)
            for submission in session.scalars(select(SubmissionModel).where(
                    SubmissionModel.assignment_id == config.id,
                    SubmissionModel.student_id == student_id)):
                late = grade_record.lateness(config.late, config.due, _charged(submission),
                                             value)
                submission.extension_days, submission.late_days = value, late.late_days
                if submission.grade is not None:
                    submission.grade.late_multiplier = late.multiplier
                    submission.grade.final_score = grade_record.final_score(
                        submission.grade.score, late.multiplier)
            session.flush()
            return _extension(row)

    def extension(self, assignment_id: str, student_id: str) -> Extension | None:
        """The extension in force for a student (the latest grant), or None."""
        with self._sessions() as session:
            row = _extension_row(session, assignment_id, student_id)
            return _extension(row) if row is not None and row.days else None

    def extensions(self, assignment_id: str, student_id: str | None = None
                   ) -> list[Extension]:
        """Every grant for the assignment (or one student), oldest first: the audit trail."""
        with self._sessions() as session:
            query = select(ExtensionModel).where(ExtensionModel.assignment_id == assignment_id)
            if student_id is not None:
                query = query.where(ExtensionModel.student_id == student_id)
            return [_extension(row) for row in session.scalars(query.order_by(ExtensionModel.id))]

    # --- reading -----------------------------------------------------------------------

    def students(self) -> list[StudentInfo]:
        with self._sessions() as session:
            return [StudentInfo(s.id, s.display_name) for s in
                    session.scalars(select(StudentModel).order_by(StudentModel.id))]

    def display_name(self, student_id: str) -> str:
        """The student's name in the gradebook (the roster's when given), or ""."""
        with self._sessions() as session:
            row = session.get(StudentModel, student_id)
            return row.display_name if row is not None else ""

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
                    extension = _extension_row(session, assignment_id, row.student_id)
                    result[row.student_id] = _grade_row(
                        row, overrides.get(row.student_id),
                        _extension(extension) if extension else None)
            return list(result.values())

    def grade_row(self, submission_id: int, *, session: Session | None = None) -> GradeRow:
        """One graded submission's row, as `latest` gives it: its grade, lateness, notes, and
        its student's override and extension in force.

        Args:
            submission_id: the submission's id in the gradebook (`GradeRow.submission_id`,
                what `record` returns).
            session: read inside this session (the caller's transaction); default: a new one.

        Returns:
            The submission's `GradeRow`, whether or not it is the student's current one.

        Raises:
            GradebookError: no submission has that id, or it has no grade.
        """
        with self._transaction(session) as active:
            row = active.get(SubmissionModel, submission_id)
            if row is None or row.grade is None:
                state = "is not graded yet" if row is not None else "does not exist"
                raise GradebookError(f"submission {submission_id!r} {state} in the gradebook; "
                                     "only a graded submission has a grade row")
            override = active.scalar(select(OverrideModel).where(
                OverrideModel.assignment_id == row.assignment_id,
                OverrideModel.student_id == row.student_id))
            extension = _extension_row(active, row.assignment_id, row.student_id)
            return _grade_row(row, _override(override) if override else None,
                              _extension(extension) if extension else None)

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
    def _check_assignment(session: Session, assignment_id: str) -> AssignmentModel:
        row = session.get(AssignmentModel, assignment_id)
        if row is None:
            known = list(session.scalars(select(AssignmentModel.id).order_by(
                AssignmentModel.id)))
            raise GradebookError(f"unknown assignment `{assignment_id}`; the gradebook "
                                 f"has: {_listing(known)}")
        return row

    @staticmethod
    def _check_student(session: Session, student_id: str, *, hint: str = "") -> None:
        if session.get(StudentModel, student_id) is None:
            known = list(session.scalars(select(StudentModel.id).order_by(StudentModel.id)))
            raise GradebookError(f"unknown student `{student_id}`; the gradebook has: "
                                 f"{_listing(known)}" + (f"; {hint}" if hint else ""))


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
    # Write-ahead log: readers (the service's pages, polls) never wait for a writer, nor a
    # writer (a worker recording a grade) for readers; a commit appends instead of rewriting.
    cursor.execute("PRAGMA journal_mode=WAL")
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
    return Override(row.assignment_id, row.student_id, row.points, row.reason, row.created_at,
                    row.set_by or "")


def _extension(row: ExtensionModel) -> Extension:
    return Extension(row.assignment_id, row.student_id, row.days, row.reason, row.granted_by,
                     row.granted_at)


def _extension_row(session: Session, assignment_id: str, student_id: str
                   ) -> ExtensionModel | None:
    """The grant in force: the latest one (None when never extended)."""
    return session.scalars(select(ExtensionModel).where(
        ExtensionModel.assignment_id == assignment_id,
        ExtensionModel.student_id == student_id).order_by(ExtensionModel.id.desc())).first()


def _charged(row: SubmissionModel) -> datetime | None:
    """The time lateness is charged from; rows from before migration 0002 have only
    `submitted_at`."""
    return row.charged_at if row.charged_at is not None else row.submitted_at


def _grade_row(row: SubmissionModel, override: Override | None,
               extension: Extension | None = None) -> GradeRow:
    assert row.grade is not None
    days = float(row.extension_days or 0.0)
    reason = extension.reason if extension is not None and days else ""
    notes = [str(note) for note in row.notes or ()]  # the intake's (a renamed file, ...)
    if days:
        notes.append(extension_note(days, reason))
    return GradeRow(
        student_id=row.student_id, display_name=row.student.display_name,
        submitted_at=row.submitted_at, late_days=row.late_days,
        late_multiplier=row.grade.late_multiplier, grade=_rebuilt_grade(row),
        override=override, submission_id=row.id,
        final_score=grade_record.final_score(row.grade.score, row.grade.late_multiplier,
                                             override.points if override else None),
        extension_days=days, extension_reason=reason, notes=tuple(notes),
        charged_at=_charged(row))


def _submission_info(row: SubmissionModel) -> SubmissionInfo:
    grade = row.grade
    return SubmissionInfo(
        submission_id=row.id, assignment_id=row.assignment_id, student_id=row.student_id,
        content_hash=row.content_hash, files=dict(row.files), submitted_at=row.submitted_at,
        graded_at=row.graded_at, late_days=row.late_days,
        late_multiplier=grade.late_multiplier if grade else 1.0,
        score=grade.score if grade else 0.0, max_score=grade.max_score if grade else 0.0,
        final_score=grade_record.final_score(grade.score, grade.late_multiplier) if grade
        else 0.0, superseded=row.superseded,
        superseded_by=row.superseded_by, source=row.source)
