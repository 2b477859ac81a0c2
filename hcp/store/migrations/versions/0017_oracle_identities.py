"""oracle: identities, the Ed25519 key each provider and validator signs with; evidence
bundles of disputes

A provider's agent registers its key (and rotates it); validators verify heartbeats and
answers against it, and the agents verify challenges against the validators' keys. A
disputed job's evidence bundle is kept with the validators' signatures; its resolution
references the bundle's SHA-256.

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
    op.create_table(
        "orc_evidence",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("dispute_id", sa.String(64), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("signatures", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orc_evidence")
    op.drop_index("ix_orc_identities_role", table_name="orc_identities")
    op.drop_table("orc_identities")
