"""The gradebook's tables (SQLAlchemy 2 ORM, typed).

students 1-n submissions n-1 assignments; a submission has its part grades, its test
results and one grade. Overrides and extensions belong to (assignment, student), not to a
submission, so an instructor's decision survives re-grading. Every time is stored in UTC.

Every change of these tables is an Alembic migration in `grader.gradebook.migrations`
(run when a gradebook is opened); a table or column added here without one is an error
that `tests/test_migrations.py` finds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC (SQLite keeps no offset; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored; expected a timezone-aware "
                             f"one. Received: {value!r}")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class StudentModel(Base):
    __tablename__ = "students"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(300), default="")


class AssignmentModel(Base):
    __tablename__ = "assignments"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    max_points: Mapped[float] = mapped_column(Float, default=0.0)


class SubmissionModel(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_lookup", "assignment_id", "student_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"))
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id"))
    files: Mapped[dict[str, str]] = mapped_column(JSON)  # file name -> sha256
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 over `files`
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The time lateness is charged from (`grader.intake.lateness_time`); None in rows from
    # before migration 0002, where `submitted_at` stands in for it.
    charged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    extension_days: Mapped[float | None] = mapped_column(Float, nullable=True, default=0.0)
    late_days: Mapped[int] = mapped_column(Integer, default=0)
    graded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(Text, default="")
    layout: Mapped[str] = mapped_column(String(20), default="plain")
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    skipped_statements: Mapped[list[str]] = mapped_column(JSON, default=list)
    execution_time_s: Mapped[float] = mapped_column(Float, default=0.0)
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    superseded_by: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"))

    student: Mapped[StudentModel] = relationship()
    assignment: Mapped[AssignmentModel] = relationship()
    parts: Mapped[list[PartGradeModel]] = relationship(
        cascade="all, delete-orphan", order_by="PartGradeModel.position")
    tests: Mapped[list[TestResultModel]] = relationship(
        cascade="all, delete-orphan", order_by="TestResultModel.position")
    grade: Mapped[GradeModel | None] = relationship(cascade="all, delete-orphan")


class PartGradeModel(Base):
    __tablename__ = "part_grades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)


class TestResultModel(Base):
    __tablename__ = "test_results"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    part: Mapped[str | None] = mapped_column(String(200))  # None: a test of no part
    name: Mapped[str] = mapped_column(String(300))  # the test function
    case: Mapped[str] = mapped_column(Text)  # the case id, parameters included
    status: Mapped[str] = mapped_column(String(20))
    fraction: Mapped[float] = mapped_column(Float)
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Nullable: rows from before outcome kinds have none (migration 0001 adds the columns).
    kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    diagnosis: Mapped[str | None] = mapped_column(String(200), nullable=True)


class GradeModel(Base):
    __tablename__ = "grades"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    late_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    final_score: Mapped[float] = mapped_column(Float)  # score * late_multiplier


class OverrideModel(Base):
    __tablename__ = "overrides"
    __table_args__ = (UniqueConstraint("assignment_id", "student_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id"))
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"))
    points: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ExtensionModel(Base):
    """One grant of `grader extend`, kept for the audit; the latest grant is the one in force."""

    __tablename__ = "extensions"
    __table_args__ = (Index("ix_extensions_lookup", "assignment_id", "student_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id"))
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"))
    days: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


JOB_KINDS = ("public", "hidden")  # public checks first: a deadline rush gets feedback fast
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")


class JobModel(Base):
    """One grading job of `grader serve`'s queue (`grader.service.queue`; migration 0003).

    A job names a stored upload (`submission`: its path, relative to the course folder)
    and who it is for; the student and assignment come from the service's side, never
    from the upload. A worker holds it while ``lease_expires`` is in the future; a hidden
    run that finishes points `record_id` at the gradebook submission it recorded.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('public', 'hidden')", name="ck_jobs_kind"),
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'cancelled')",
                        name="ck_jobs_state"),
        Index("ix_jobs_claim", "state", "kind", "priority", "created_at"),
        Index("ix_jobs_owner", "assignment_id", "student_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission: Mapped[str] = mapped_column(Text)  # the stored upload, relative to the course
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assignment_id: Mapped[str] = mapped_column(String(100))
    student_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher runs sooner
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())  # receipt time: lateness
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # summary
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), nullable=True)


# --- grader serve: users, attempts, release, limits, audit (migration 0004) ---------------
ROLES = ("student", "ta", "instructor")
RELEASE_MODES = ("due", "manual")  # hidden results out at the due date, or when released


class UserModel(Base):
    """A person who signs in to `grader serve` (`grader.service.auth`).

    Staff sign in with `name` and a password (argon2 hash); a student signs in with the
    student id and an access code from `grader roster --issue-codes` (argon2 hash; a new
    code replaces the old one). Nothing secret is stored in the clear.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('student', 'ta', 'instructor')", name="ck_users_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # a student's: the student id
    role: Mapped[str] = mapped_column(String(20))
    student_id: Mapped[str | None] = mapped_column(
        ForeignKey("students.id"), nullable=True, unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AttemptModel(Base):
    """One upload by a student (every one kept): the stored file, whether it cost an
    attempt, why it was refused, and its public and hidden jobs."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_owner", "assignment_id", "student_id", "uploaded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[str] = mapped_column(String(100))
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    file_name: Mapped[str] = mapped_column(String(300))  # as shown: printable, cut
    size: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[str | None] = mapped_column(Text, nullable=True)  # relative to the course
    counted: Mapped[bool] = mapped_column(Boolean, default=False)  # costs one graded attempt
    refused: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it cannot be graded
    public_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    hidden_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)


class AssignmentSettingModel(Base):
    """Per assignment: when hidden results are released, and the attempt limit."""

    __tablename__ = "assignment_settings"
    __table_args__ = (
        CheckConstraint("release_mode IN ('due', 'manual')", name="ck_settings_release"),
    )

    assignment_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    release_mode: Mapped[str] = mapped_column(String(10), default="due")
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: none


class AuditModel(Base):
    """Who did what, when: every staff action and every sign-in of the service."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))  # the user's name, kept if the user goes
    action: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LoginAttemptModel(Base):
    """One sign-in attempt, for the rate limit (per account name and per client address)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_name", "name", "at"),
                      Index("ix_login_attempts_client", "client", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    name: Mapped[str] = mapped_column(String(200))
    client: Mapped[str] = mapped_column(String(100))
    success: Mapped[bool] = mapped_column(Boolean, default=False)


# --- LTI 1.3: launches, login states, used nonces, grade passback (migration 0005) --------
PASSBACK_STATES = ("pending", "sending", "sent", "failed")


class LtiLaunchModel(Base):
    """One checked LTI launch (`grader.service.lti`): who came from which LMS activity, and
    the Assignment and Grade Services line item their grade goes to ("" for none)."""

    __tablename__ = "lti_launches"
    __table_args__ = (Index("ix_lti_launches_link", "assignment_id", "student_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(300))
    deployment_id: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))  # the LMS's user id (`sub`)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    student_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(20))
    context_id: Mapped[str] = mapped_column(String(300), default="")
    resource_link_id: Mapped[str] = mapped_column(String(300), default="")
    assignment_id: Mapped[str] = mapped_column(String(100), default="")  # "" when none
    lineitem: Mapped[str] = mapped_column(Text, default="")
    ags_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)


class LtiStateModel(Base):
    """An OIDC login waiting for its launch: taken once (deleted), refused after `expires_at`."""

    __tablename__ = "lti_states"
    __table_args__ = (Index("ix_lti_states_expires", "expires_at"),)

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LtiNonceModel(Base):
    """A nonce an accepted id_token carried: the primary key refuses its second use."""

    __tablename__ = "lti_nonces"
    __table_args__ = (Index("ix_lti_nonces_expires", "expires_at"),)

    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LtiPassbackModel(Base):
    """One student's grade for one LMS line item: the outbox of grade passback.

    `score` is what should be in the LMS (the gradebook's final score once released);
    `sent_score` what the LMS last accepted. A row is pending while they differ, sending
    while a worker holds it, failed after its last retry (the instructor sends it again).
    """

    __tablename__ = "lti_passbacks"
    __table_args__ = (
        UniqueConstraint("assignment_id", "student_id", "lineitem",
                         name="uq_lti_passbacks_target"),
        CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed')",
                        name="ck_lti_passbacks_state"),
        Index("ix_lti_passbacks_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[str] = mapped_column(String(100))
    student_id: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    lineitem: Mapped[str] = mapped_column(String(2000))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed sends of this score
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
