# The gradebook's models as the last release before migrations shipped them (commit 1a5e47c,
# `git show 1a5e47c:grader/gradebook/models.py`), kept verbatim below this comment so that
# tests/test_migrations.py can build a gradebook of that release on SQLite and PostgreSQL.
"""The gradebook's tables (SQLAlchemy 2 ORM, typed).

students 1-n submissions n-1 assignments; a submission has its part grades, its test
results and one grade. Overrides belong to (assignment, student), not to a submission, so
an instructor's decision survives re-grading. Every time is stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
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
    # Nullable: rows from before outcome kinds have none (see `store.add_missing_columns`).
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
