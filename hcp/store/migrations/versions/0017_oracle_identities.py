"""oracle: identities, the Ed25519 key each provider and validator signs with

A provider's agent registers its key (and rotates it); validators verify heartbeats and
answers against it, and the agents verify challenges against the validators' keys.

Revision ID: 0017_oracle_identities
Revises: 0012_oracle
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_oracle_identities"
down_revision = "0012_oracle"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orc_identities",
        sa.Column("identity", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("rotated_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.CheckConstraint("role IN ('provider', 'validator')", name="ck_orc_identities_role"),
    )
    op.create_index("ix_orc_identities_role", "orc_identities", ["role"])


def downgrade() -> None:
    op.drop_index("ix_orc_identities_role", table_name="orc_identities")
    op.drop_table("orc_identities")
