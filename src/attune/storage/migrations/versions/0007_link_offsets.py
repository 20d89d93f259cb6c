"""identity links: the log offset that wrote each link, indexed

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_offset", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_identity_links_offset", ["link_offset"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_links_offset")
        batch_op.drop_column("link_offset")
