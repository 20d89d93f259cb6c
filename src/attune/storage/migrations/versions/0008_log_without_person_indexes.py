"""event log: drop the per-person indexes (appends paid for them; rare per-person reads scan)

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain DROP INDEX on both dialects: no table rebuild, however large the log.
    op.drop_index("ix_events_user_key", table_name="events")
    op.drop_index("ix_events_anon_key", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_user_key", "events", ["user_key"], unique=False)
    op.create_index("ix_events_anon_key", "events", ["anon_key"], unique=False)
