"""privacy: person data keys, pseudonymized subjects, consent, audit log

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "person_keys",
        sa.Column("subject_key", sa.String(300), primary_key=True),
        sa.Column("master_key_id", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "subjects",
        sa.Column("subject_key", sa.String(300), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("raw_id", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "consent_current",
        sa.Column("subject_key", sa.String(300), primary_key=True),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "consent_history",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("subject_key", sa.String(300), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_consent_history_subject", "consent_history", ["subject_key"])
    op.create_table(
        "audit_log",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_index("ix_consent_history_subject", table_name="consent_history")
    op.drop_table("consent_history")
    op.drop_table("consent_current")
    op.drop_table("subjects")
    op.drop_table("person_keys")
