"""One grade record (issue 11): extensions, the time lateness is charged from, who overrode.

- ``extensions``: every `grader extend` grant (days, reason, who, when); the latest counts.
- ``submissions.charged_at``: the time lateness is charged from (Canvas's LATE marker can
  differ from the submission time); null in older rows, where ``submitted_at`` is used.
- ``submissions.extension_days``: the extension the stored lateness was computed with.
- ``overrides.set_by``: who set the override.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step is skipped when already done, so a gradebook whose alembic_version table was
    # lost (copied without it, say) is adopted as it is.
    inspector = sa.inspect(op.get_bind())
    if "extensions" not in inspector.get_table_names():
        op.create_table(
            "extensions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("assignment_id", sa.String(100), sa.ForeignKey("assignments.id"),
                      nullable=False),
            sa.Column("student_id", sa.String(200), sa.ForeignKey("students.id"),
                      nullable=False),
            sa.Column("days", sa.Float, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("granted_by", sa.String(200), nullable=False),
            sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False))
        op.create_index("ix_extensions_lookup", "extensions", ["assignment_id", "student_id"])
    added = {"submissions": (sa.Column("charged_at", sa.DateTime(timezone=True), nullable=True),
                             sa.Column("extension_days", sa.Float, nullable=True)),
             "overrides": (sa.Column("set_by", sa.String(200), nullable=True),)}
    for table, columns in added.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        missing = [column for column in columns if column.name not in present]
        if missing:
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("overrides") as table:
        table.drop_column("set_by")
    with op.batch_alter_table("submissions") as table:
        table.drop_column("extension_days")
        table.drop_column("charged_at")
    op.drop_index("ix_extensions_lookup", "extensions")
    op.drop_table("extensions")
