"""fleet: facilities, devices, device state, append-only events, shares

Revision ID: 0001_fleet
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.append_only import allow_rewrites, forbid_rewrites
from hcp.store.migrations.frozen_types import UtcDateTime

revision = "0001_fleet"
down_revision = None
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "facilities",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("capacity_mw", sa.Float, nullable=False),
        sa.Column("pue", sa.Float, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "gpus",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("facility", sa.String(64), sa.ForeignKey("facilities.name"), nullable=False, index=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("memory_gb", sa.Float, nullable=False),
        sa.Column("power_w", sa.Float, nullable=False),
        sa.Column("device_index", sa.Integer, nullable=True),
    )
    op.create_table(
        "asics",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("facility", sa.String(64), sa.ForeignKey("facilities.name"), nullable=False, index=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("hashrate_ths", sa.Float, nullable=False),
        sa.Column("power_w", sa.Float, nullable=False),
    )
    op.create_table(
        "device_state",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("mode_since", UtcDateTime, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("hashes_done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("inference_requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("mining_state", sa.JSON, nullable=True),
        sa.Column("restarts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("mode IN ('MINING','INFERENCE','IDLE','CURTAILED')", name="ck_device_state_mode"),
    )
    op.create_table(
        "events",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=True, index=True),
        sa.Column("facility", sa.String(64), nullable=True),
        sa.Column("from_mode", sa.String(16), nullable=True),
        sa.Column("to_mode", sa.String(16), nullable=True),
        sa.Column("generation", sa.Integer, nullable=True),
        sa.Column("total_ms", sa.Float, nullable=True),
        sa.Column("pause_ms", sa.Float, nullable=True),
        sa.Column("save_state_ms", sa.Float, nullable=True),
        sa.Column("activate_ms", sa.Float, nullable=True),
        sa.Column("health_check_ms", sa.Float, nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON, nullable=True),
        sa.UniqueConstraint("device_id", "kind", "generation", name="uq_events_device_generation"),
    )
    op.create_table(
        "shares",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("extranonce", sa.BigInteger, nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        sa.Column("hash_hex", sa.String(64), nullable=False),
        sa.Column("difficulty", sa.Float, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("job_id", "extranonce", "nonce", name="uq_shares_work"),
    )
    _forbid_event_rewrites()


def _forbid_event_rewrites() -> None:
    """The event log is evidence: the database itself refuses to change or delete it."""
    forbid_rewrites(["events"], "hcp_events_append_only", lambda _t: "events are append-only",
                    "events are append-only")


def downgrade() -> None:
    allow_rewrites(["events"], "hcp_events_append_only")
    for table in ("shares", "events", "device_state", "asics", "gpus", "facilities"):
        op.drop_table(table)
