"""The service's own tables (issue 13, `grader serve`): users, attempts, per-assignment
release and attempt limits, the audit log, sign-in attempts.

- ``users``: role student|ta|instructor; a student's row links to `students`; argon2
  hashes of staff passwords and of students' access codes (never the secrets).
- ``attempts``: every upload (kept), whether it cost an attempt, why it was refused, its
  public and hidden jobs.
- ``assignment_settings``: hidden results released at the due date or by hand; graded
  attempts allowed per hour.
- ``audit_log``: who, when, action, detail.
- ``login_attempts``: for the sign-in rate limit.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "users" not in existing:  # each table adopted as it is when present (see 0002)
        op.create_table(
            "users",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(200), nullable=False, unique=True),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("student_id", sa.String(200), sa.ForeignKey("students.id"),
                      nullable=True, unique=True),
            sa.Column("password_hash", sa.Text, nullable=True),
            sa.Column("code_hash", sa.Text, nullable=True),
            sa.Column("code_issued_at", TZ, nullable=True),
            sa.Column("created_at", TZ, nullable=False),
            sa.Column("active", sa.Boolean, nullable=False),
            sa.CheckConstraint("role IN ('student', 'ta', 'instructor')", name="ck_users_role"))
    if "attempts" not in existing:
        op.create_table(
            "attempts",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("assignment_id", sa.String(100), nullable=False),
            sa.Column("student_id", sa.String(200), sa.ForeignKey("students.id"),
                      nullable=False),
            sa.Column("uploaded_at", TZ, nullable=False),
            sa.Column("file_name", sa.String(300), nullable=False),
            sa.Column("size", sa.Integer, nullable=False),
            sa.Column("stored", sa.Text, nullable=True),
            sa.Column("counted", sa.Boolean, nullable=False),
            sa.Column("refused", sa.Text, nullable=True),
            sa.Column("public_job_id", sa.Integer,
                      sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
            sa.Column("hidden_job_id", sa.Integer,
                      sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True))
        op.create_index("ix_attempts_owner", "attempts",
                        ["assignment_id", "student_id", "uploaded_at"])
    if "assignment_settings" not in existing:
        op.create_table(
            "assignment_settings",
            sa.Column("assignment_id", sa.String(100), primary_key=True),
            sa.Column("release_mode", sa.String(10), nullable=False),
            sa.Column("released_at", TZ, nullable=True),
            sa.Column("released_by", sa.String(200), nullable=True),
            sa.Column("attempts_per_hour", sa.Integer, nullable=True),
            sa.CheckConstraint("release_mode IN ('due', 'manual')", name="ck_settings_release"))
    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", TZ, nullable=False),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"),
                      nullable=True),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("action", sa.String(100), nullable=False),
            sa.Column("detail", sa.JSON, nullable=False))
        op.create_index("ix_audit_at", "audit_log", ["at"])
    if "login_attempts" not in existing:
        op.create_table(
            "login_attempts",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", TZ, nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("client", sa.String(100), nullable=False),
            sa.Column("success", sa.Boolean, nullable=False))
        op.create_index("ix_login_attempts_name", "login_attempts", ["name", "at"])
        op.create_index("ix_login_attempts_client", "login_attempts", ["client", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_client", "login_attempts")
    op.drop_index("ix_login_attempts_name", "login_attempts")
    op.drop_table("login_attempts")
    op.drop_index("ix_audit_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("assignment_settings")
    op.drop_index("ix_attempts_owner", "attempts")
    op.drop_table("attempts")
    op.drop_table("users")
