"""chain: indexed contract events, indexer cursor, recent block hashes, job projection

Revision ID: 0006_chain
Revises: 0001_fleet
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.frozen_types import TokenAmount, UtcDateTime

revision = "0006_chain"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "chain_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("block_number", sa.BigInteger, nullable=False, index=True),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("contract", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False, index=True),
        sa.Column("job_key", sa.String(66), nullable=True, index=True),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("indexed_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_log"),
    )
    op.create_table(
        "chain_cursor",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("last_block", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(66), nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "chain_blocks",
        sa.Column("cursor", sa.String(128), primary_key=True),
        sa.Column("number", sa.BigInteger, primary_key=True),
        sa.Column("hash", sa.String(66), nullable=False),
    )
    op.create_table(
        "chain_jobs",
        sa.Column("job_key", sa.String(66), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("user", sa.String(42), nullable=False, index=True),
        sa.Column("provider", sa.String(42), nullable=False, index=True),
        sa.Column("resource_id", sa.String(66), nullable=True),
        sa.Column("image_cid", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("locked", TokenAmount, nullable=False),
        sa.Column("paid_provider", TokenAmount, nullable=False),
        sa.Column("paid_platform", TokenAmount, nullable=False),
        sa.Column("refunded", TokenAmount, nullable=False),
        sa.Column("final_cost", TokenAmount, nullable=True),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.Integer, nullable=True),
        sa.Column("updated_block", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("chain_jobs", "chain_blocks", "chain_cursor", "chain_events"):
        op.drop_table(table)
