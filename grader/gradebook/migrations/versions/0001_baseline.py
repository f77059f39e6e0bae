"""The gradebook as the last release without migrations left it (commit 1a5e47c).

Creates each table that does not exist yet, so this revision also adopts a gradebook made
before migrations existed: its tables are kept as they are, and the two columns that
release added on the fly (`test_results.kind`, `test_results.diagnosis`, nullable) are
added when an even older gradebook lacks them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    def create(name: str, *columns: sa.SchemaItem) -> None:
        if name not in existing:
            op.create_table(name, *columns)

    create("students",
           sa.Column("id", sa.String(200), primary_key=True),
           sa.Column("display_name", sa.String(300), nullable=False))
    create("assignments",
           sa.Column("id", sa.String(100), primary_key=True),
           sa.Column("title", sa.String(300), nullable=False),
           sa.Column("due", UTC_TIME, nullable=True),
           sa.Column("max_points", sa.Float, nullable=False))
    if "submissions" not in existing:
        op.create_table(
            "submissions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("student_id", sa.String(200), sa.ForeignKey("students.id"),
                      nullable=False),
            sa.Column("assignment_id", sa.String(100), sa.ForeignKey("assignments.id"),
                      nullable=False),
            sa.Column("files", sa.JSON, nullable=False),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("submitted_at", UTC_TIME, nullable=True),
            sa.Column("late_days", sa.Integer, nullable=False),
            sa.Column("graded_at", UTC_TIME, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("layout", sa.String(20), nullable=False),
            sa.Column("problems", sa.JSON, nullable=False),
            sa.Column("notes", sa.JSON, nullable=False),
            sa.Column("skipped_statements", sa.JSON, nullable=False),
            sa.Column("execution_time_s", sa.Float, nullable=False),
            sa.Column("superseded", sa.Boolean, nullable=False),
            sa.Column("superseded_by", sa.Integer,
                      sa.ForeignKey("submissions.id", ondelete="SET NULL"), nullable=True))
        op.create_index("ix_submissions_lookup", "submissions",
                        ["assignment_id", "student_id", "content_hash"])
    if "part_grades" not in existing:
        op.create_table(
            "part_grades",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("submission_id", sa.Integer,
                      sa.ForeignKey("submissions.id", ondelete="CASCADE"), nullable=False),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("points", sa.Float, nullable=False),
            sa.Column("max_points", sa.Float, nullable=False))
        op.create_index("ix_part_grades_submission_id", "part_grades", ["submission_id"])
    if "test_results" not in existing:
        op.create_table(
            "test_results",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("submission_id", sa.Integer,
                      sa.ForeignKey("submissions.id", ondelete="CASCADE"), nullable=False),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("part", sa.String(200), nullable=True),
            sa.Column("name", sa.String(300), nullable=False),
            sa.Column("case", sa.Text, nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("fraction", sa.Float, nullable=False),
            sa.Column("points", sa.Float, nullable=False),
            sa.Column("max_points", sa.Float, nullable=False),
            sa.Column("message", sa.Text, nullable=False),
            sa.Column("duration_s", sa.Float, nullable=False),
            sa.Column("figures", sa.JSON, nullable=False),
            sa.Column("kind", sa.String(40), nullable=True),
            sa.Column("diagnosis", sa.String(200), nullable=True))
        op.create_index("ix_test_results_submission_id", "test_results", ["submission_id"])
    else:  # a gradebook from before outcome kinds
        present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("test_results")}
        for name, kind in (("kind", sa.String(40)), ("diagnosis", sa.String(200))):
            if name not in present:
                op.add_column("test_results", sa.Column(name, kind, nullable=True))
    create("grades",
           sa.Column("submission_id", sa.Integer,
                     sa.ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True),
           sa.Column("score", sa.Float, nullable=False),
           sa.Column("max_score", sa.Float, nullable=False),
           sa.Column("late_multiplier", sa.Float, nullable=False),
           sa.Column("final_score", sa.Float, nullable=False))
    create("overrides",
           sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
           sa.Column("assignment_id", sa.String(100), sa.ForeignKey("assignments.id"),
                     nullable=False),
           sa.Column("student_id", sa.String(200), sa.ForeignKey("students.id"),
                     nullable=False),
           sa.Column("points", sa.Float, nullable=False),
           sa.Column("reason", sa.Text, nullable=False),
           sa.Column("created_at", UTC_TIME, nullable=False),
           sa.UniqueConstraint("assignment_id", "student_id"))


def downgrade() -> None:
    for name in ("overrides", "grades", "test_results", "part_grades", "submissions",
                 "assignments", "students"):
        op.drop_table(name)
