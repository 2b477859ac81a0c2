"""notary: miner keys, tasks, claims ledger, nonces, stake entries; shared rate counters

Revision ID: 0004_notary
Revises: 0001_fleet
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.frozen_types import UtcDateTime

revision = "0004_notary"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_seconds", sa.Integer, primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_table(
        "miner_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("stake", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("slashed_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("warnings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("slashes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        sa.CheckConstraint("stake >= 0", name="ck_miner_keys_stake"),
        sa.CheckConstraint("balance >= 0", name="ck_miner_keys_balance"),
        sa.CheckConstraint("status IN ('active','revoked')", name="ck_miner_keys_status"),
    )
    op.create_table(
        "notary_tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("performance_threshold", sa.Float, nullable=False),
        sa.Column("dataset_hash", sa.String(71), nullable=False),
        sa.Column("max_training_time_seconds", sa.Float, nullable=False),
        sa.Column("reward", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.CheckConstraint("reward >= 0", name="ck_notary_tasks_reward"),
    )
    op.create_table(
        "notary_claims",
        sa.Column("submission_id", sa.String(36), primary_key=True),
        sa.Column("miner_id", sa.String(36), sa.ForeignKey("miner_keys.id"), nullable=False,
                  index=True),
        sa.Column("task_id", sa.String(64), sa.ForeignKey("notary_tasks.id"), nullable=False,
                  index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_score", sa.Float, nullable=False),
        sa.Column("verified_score", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("artifact_hash", sa.String(71), nullable=False, index=True),
        sa.Column("artifact_uri", sa.String(500), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("payload_timestamp", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(36), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False, index=True),
        sa.Column("verification_seconds", sa.Float, nullable=False),
        sa.Column("duplicate_of", sa.String(36), nullable=True),
        sa.Column("reward", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("slashed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("warning", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("nonce", name="uq_notary_claims_nonce"),
        sa.CheckConstraint("status IN ('verified','rejected')", name="ck_notary_claims_status"),
    )
    op.create_table(
        "notary_first_finders",
        sa.Column("artifact_hash", sa.String(71), primary_key=True),
        sa.Column("submission_id", sa.String(36), nullable=False),
    )
    op.create_table(
        "notary_nonces",
        sa.Column("nonce", sa.String(36), primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
    )
    op.create_table(
        "notary_stake_entries",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("miner_id", sa.String(36), sa.ForeignKey("miner_keys.id"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("submission_id", sa.String(36), nullable=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("submission_id", "kind", name="uq_stake_entry_claim_kind"),
    )


def downgrade() -> None:
    for table in ("notary_stake_entries", "notary_nonces", "notary_first_finders",
                  "notary_claims", "notary_tasks", "miner_keys", "rate_counters"):
        op.drop_table(table)
