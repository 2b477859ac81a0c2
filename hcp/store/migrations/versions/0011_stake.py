"""stake: providers' bonded and unbonding stake beside the double-entry ledger

Revision ID: 0011_stake
Revises: 0005_marketplace
Create Date: 2026-12-01

Frozen: only sqlalchemy and alembic. The amount type is written out as TokenAmount stores it
(NUMERIC(78, 0) on PostgreSQL, zero-padded 78-character text elsewhere).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_stake"
down_revision = "0005_marketplace"
branch_labels = None
depends_on = None

_AMOUNT = sa.String(78).with_variant(sa.Numeric(78, 0), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ledger_stakes",
        sa.Column("provider", sa.String(160), primary_key=True),
        sa.Column("bonded", _AMOUNT, nullable=False),
        sa.Column("unbonding", _AMOUNT, nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("ledger_stakes")
