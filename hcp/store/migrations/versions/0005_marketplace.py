"""marketplace: offers, jobs, job events, disputes, reputation, double-entry ledger, wallet nonces

Revision ID: 0005_marketplace
Revises: 0001_fleet
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.frozen_types import TokenAmount, UtcDateTime

revision = "0005_marketplace"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_WHO = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "mk_offers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("provider", _WHO, nullable=False, index=True),
        sa.Column("gpu_model", sa.String(64), nullable=False),
        sa.Column("vcpu", sa.Integer, nullable=False),
        sa.Column("memory_gb", sa.Integer, nullable=False),
        sa.Column("storage_gb", sa.Integer, nullable=False),
        sa.Column("price_per_hour", TokenAmount, nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("reputation", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    # Keyset pages of the common searches: (filter columns..., sort key, id).
    op.create_index("ix_mk_offers_price", "mk_offers", ["available", "price_per_hour", "id"])
    op.create_index("ix_mk_offers_model_price", "mk_offers",
                    ["available", "gpu_model", "price_per_hour", "id"])
    op.create_index("ix_mk_offers_reputation", "mk_offers", ["available", "reputation", "id"])
    op.create_index("ix_mk_offers_location", "mk_offers", ["location"])
    op.create_table(
        "mk_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("offer_id", sa.String(36), sa.ForeignKey("mk_offers.id"), nullable=False, index=True),
        sa.Column("renter", _WHO, nullable=False, index=True),
        sa.Column("provider", _WHO, nullable=False, index=True),
        sa.Column("image_cid", sa.String(128), nullable=False),
        sa.Column("price_per_hour", TokenAmount, nullable=False),
        sa.Column("estimated_seconds", sa.BigInteger, nullable=False),
        sa.Column("max_cost", TokenAmount, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("accepted_at", UtcDateTime, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("ended_at", UtcDateTime, nullable=True),
        sa.Column("final_cost", TokenAmount, nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("pending_escrow", sa.JSON, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint(
            "status IN ('CREATED','ACCEPTED','RUNNING','COMPLETED','DISPUTED','RESOLVED','CANCELLED')",
            name="ck_mk_jobs_status"),
    )
    op.create_table(
        "mk_job_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(36), sa.ForeignKey("mk_jobs.id"), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", _WHO, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("detail", sa.JSON, nullable=True),
        sa.UniqueConstraint("job_id", "seq", name="uq_mk_job_events_seq"),
    )
    op.create_table(
        "mk_disputes",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("mk_jobs.id"), primary_key=True),
        sa.Column("initiator", _WHO, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("opened_at", UtcDateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("resolved_by", _WHO, nullable=True),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
    )
    op.create_table(
        "mk_reputation",
        sa.Column("provider", _WHO, primary_key=True),
        sa.Column("total_jobs", sa.Integer, nullable=False),
        sa.Column("completed_jobs", sa.Integer, nullable=False),
        sa.Column("disputes", sa.Integer, nullable=False),
        sa.Column("accepted_jobs", sa.Integer, nullable=False),
        sa.Column("response_seconds_total", sa.BigInteger, nullable=False),
        sa.Column("uptime_seconds", sa.BigInteger, nullable=False),
        sa.Column("expected_seconds", sa.BigInteger, nullable=False),
        sa.Column("penalty", sa.Integer, nullable=False),
        sa.Column("bonus", sa.Integer, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("score BETWEEN 0 AND 1000", name="ck_mk_reputation_score"),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("name", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("balance", TokenAmount, nullable=False),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        # The idempotency key: a retried operation finds its own row and moves nothing.
        sa.Column("op_key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True, index=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tx_id", _ID, sa.ForeignKey("ledger_transactions.id"), nullable=False, index=True),
        sa.Column("debit", sa.String(160), sa.ForeignKey("ledger_accounts.name"), nullable=False,
                  index=True),
        sa.Column("credit", sa.String(160), sa.ForeignKey("ledger_accounts.name"), nullable=False,
                  index=True),
        sa.Column("amount", TokenAmount, nullable=False),
        sa.CheckConstraint("debit <> credit", name="ck_ledger_entries_distinct"),
    )
    op.create_table(
        "ledger_escrows",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("renter", sa.String(160), nullable=False),
        sa.Column("provider", sa.String(160), nullable=False),
        sa.Column("locked", TokenAmount, nullable=False),
        sa.Column("remaining", TokenAmount, nullable=False),
        sa.Column("paid", TokenAmount, nullable=False),
        sa.Column("refunded", TokenAmount, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.CheckConstraint("state IN ('LOCKED','RELEASED','REFUNDED')", name="ck_ledger_escrows_state"),
    )
    op.create_table(
        "mk_wallet_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("issued_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
        sa.Column("used_at", UtcDateTime, nullable=True),
    )


def downgrade() -> None:
    for table in ("mk_wallet_nonces", "ledger_escrows", "ledger_entries", "ledger_transactions",
                  "ledger_accounts", "mk_reputation", "mk_disputes", "mk_job_events", "mk_jobs"):
        op.drop_table(table)
    for ix in ("ix_mk_offers_location", "ix_mk_offers_reputation", "ix_mk_offers_model_price",
               "ix_mk_offers_price"):
        op.drop_index(ix, table_name="mk_offers")
    op.drop_table("mk_offers")
