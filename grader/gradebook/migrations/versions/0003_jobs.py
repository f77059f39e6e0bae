"""The queue of `grader serve` (issue 13): one row per grading job (`grader.service.queue`).

- ``jobs``: a stored upload (path relative to the course), its assignment and student
  (from the service's side), kind public|hidden, priority, state
  queued|running|done|failed|cancelled, attempts, the lease (owner, expiry), receipt,
  creation, start and finish times, the error text, the public run's summary, and the
  gradebook submission a hidden run recorded.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "jobs" in sa.inspect(op.get_bind()).get_table_names():
        return  # adopted as it is (see 0002)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("submission", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("assignment_id", sa.String(100), nullable=False),
        sa.Column("student_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("record_id", sa.Integer,
                  sa.ForeignKey("submissions.id", ondelete="SET NULL"), nullable=True),
        sa.CheckConstraint("kind IN ('public', 'hidden')", name="ck_jobs_kind"),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'cancelled')",
                           name="ck_jobs_state"))
    op.create_index("ix_jobs_claim", "jobs", ["state", "kind", "priority", "created_at"])
    op.create_index("ix_jobs_owner", "jobs", ["assignment_id", "student_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner", "jobs")
    op.drop_index("ix_jobs_claim", "jobs")
    op.drop_table("jobs")
