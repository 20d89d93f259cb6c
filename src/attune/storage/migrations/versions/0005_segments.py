"""segments: definitions, memberships, entry/exit history, hourly sizes, webhook outbox

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "segment_definitions",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "segment_memberships",
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("user_key", sa.String(length=300), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("segment", "user_key"),
    )
    op.create_index("ix_segment_memberships_user", "segment_memberships", ["user_key"])
    op.create_table(
        "segment_history",
        sa.Column("seq", _Seq, autoincrement=True, nullable=False),
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("user_key", sa.String(length=300), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_segment_history_segment_seq", "segment_history", ["segment", "seq"])
    op.create_table(
        "segment_sizes",
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("exits", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("segment", "hour"),
    )
    op.create_table(
        "segment_outbox",
        sa.Column("id", _Seq, autoincrement=True, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_segment_outbox_due", "segment_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_segment_outbox_due", table_name="segment_outbox")
    op.drop_table("segment_outbox")
    op.drop_table("segment_sizes")
    op.drop_index("ix_segment_history_segment_seq", table_name="segment_history")
    op.drop_table("segment_history")
    op.drop_index("ix_segment_memberships_user", table_name="segment_memberships")
    op.drop_table("segment_memberships")
    op.drop_table("segment_definitions")
