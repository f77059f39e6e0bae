"""LTI 1.3 of `grader serve` (issue 13): launches, login states, used nonces, grade passback.

- ``lti_launches``: every checked launch: platform issuer, client id, deployment, the LMS
  user (``sub``), our user and student, role, LMS course and resource link, the assignment,
  the AGS line item and scopes, and the time.
- ``lti_states``: OIDC logins waiting for their launch (state, nonce, issuer, client id,
  expiry); a launch deletes its row, so a state works once in any process.
- ``lti_nonces``: nonces of accepted id_tokens until they expire; the primary key refuses
  a second use in any process.
- ``lti_passbacks``: the grade-passback outbox: one row per (assignment, student, line
  item) with the score to send, the score the LMS accepted, state
  pending|sending|sent|failed, attempts, the next try, a worker's lease and the last error.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "lti_launches" not in existing:  # each table adopted as it is when present (see 0002)
        op.create_table(
            "lti_launches",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", TZ, nullable=False),
            sa.Column("issuer", sa.String(300), nullable=False),
            sa.Column("client_id", sa.String(300), nullable=False),
            sa.Column("deployment_id", sa.String(300), nullable=False),
            sa.Column("subject", sa.String(255), nullable=False),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"),
                      nullable=True),
            sa.Column("student_id", sa.String(200), nullable=True),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("context_id", sa.String(300), nullable=False),
            sa.Column("resource_link_id", sa.String(300), nullable=False),
            sa.Column("assignment_id", sa.String(100), nullable=False),
            sa.Column("lineitem", sa.Text, nullable=False),
            sa.Column("ags_scopes", sa.JSON, nullable=False))
        op.create_index("ix_lti_launches_link", "lti_launches",
                        ["assignment_id", "student_id", "id"])
    if "lti_states" not in existing:
        op.create_table(
            "lti_states",
            sa.Column("state", sa.String(100), primary_key=True),
            sa.Column("nonce", sa.String(100), nullable=False),
            sa.Column("issuer", sa.String(300), nullable=False),
            sa.Column("client_id", sa.String(300), nullable=True),
            sa.Column("expires_at", TZ, nullable=False))
        op.create_index("ix_lti_states_expires", "lti_states", ["expires_at"])
    if "lti_nonces" not in existing:
        op.create_table(
            "lti_nonces",
            sa.Column("nonce", sa.String(100), primary_key=True),
            sa.Column("expires_at", TZ, nullable=False))
        op.create_index("ix_lti_nonces_expires", "lti_nonces", ["expires_at"])
    if "lti_passbacks" not in existing:
        op.create_table(
            "lti_passbacks",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("assignment_id", sa.String(100), nullable=False),
            sa.Column("student_id", sa.String(200), nullable=False),
            sa.Column("issuer", sa.String(300), nullable=False),
            sa.Column("client_id", sa.String(300), nullable=False),
            sa.Column("subject", sa.String(255), nullable=False),
            sa.Column("lineitem", sa.String(2000), nullable=False),
            sa.Column("score", sa.Float, nullable=False),
            sa.Column("max_score", sa.Float, nullable=False),
            sa.Column("state", sa.String(10), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("next_attempt_at", TZ, nullable=False),
            sa.Column("lease_owner", sa.String(200), nullable=True),
            sa.Column("lease_expires", TZ, nullable=True),
            sa.Column("sent_score", sa.Float, nullable=True),
            sa.Column("sent_at", TZ, nullable=True),
            sa.Column("error", sa.Text, nullable=True),
            sa.UniqueConstraint("assignment_id", "student_id", "lineitem",
                                name="uq_lti_passbacks_target"),
            sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed')",
                               name="ck_lti_passbacks_state"))
        op.create_index("ix_lti_passbacks_due", "lti_passbacks", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_lti_passbacks_due", "lti_passbacks")
    op.drop_table("lti_passbacks")
    op.drop_index("ix_lti_nonces_expires", "lti_nonces")
    op.drop_table("lti_nonces")
    op.drop_index("ix_lti_states_expires", "lti_states")
    op.drop_table("lti_states")
    op.drop_index("ix_lti_launches_link", "lti_launches")
    op.drop_table("lti_launches")
