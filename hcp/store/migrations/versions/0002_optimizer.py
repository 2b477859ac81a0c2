"""optimizer: processed steps, issued decisions and their outcomes (append-only)

Revision ID: 0002_optimizer
Revises: 0001_fleet
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.append_only import allow_rewrites, forbid_rewrites
from hcp.store.migrations.frozen_types import UtcDateTime

revision = "0002_optimizer"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_ID_LEN = 128
_TABLES = ("optimizer_steps", "optimizer_decisions", "optimizer_outcomes")


def upgrade() -> None:
    op.create_table(
        "optimizer_steps",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("tick_at", UtcDateTime, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False, index=True),
        sa.Column("tick", sa.JSON, nullable=False),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("period_start", UtcDateTime, nullable=True),
        sa.Column("realized_profit_micro_usd", sa.BigInteger, nullable=True),
        sa.Column("policy_state", sa.JSON, nullable=True),
        sa.UniqueConstraint("tick_at", name="uq_optimizer_steps_tick_at"),
    )
    op.create_table(
        "optimizer_decisions",
        sa.Column("decision_id", sa.String(_ID_LEN), primary_key=True),
        sa.Column("tick_at", UtcDateTime, nullable=False, index=True),
        sa.Column("issued_at", UtcDateTime, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("facility", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("from_mode", sa.String(16), nullable=False),
        sa.Column("to_mode", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("expected_gain_usd_per_hour", sa.Float, nullable=False),
        sa.Column("issued_generation", sa.Integer, nullable=False),
        sa.CheckConstraint("kind IN ('gpu','asic')", name="ck_optimizer_decisions_kind"),
    )
    op.create_table(
        "optimizer_outcomes",
        sa.Column("decision_id", sa.String(_ID_LEN), sa.ForeignKey("optimizer_decisions.decision_id"),
                  primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False, index=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("generation", sa.Integer, nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("realized_profit_micro_usd", sa.BigInteger, nullable=True),
    )
    _forbid_rewrites()


def _forbid_rewrites() -> None:
    """Decisions and outcomes are evidence: the database refuses to change or delete them."""
    forbid_rewrites(_TABLES, "hcp_optimizer_append_only", lambda t: f"{t} is append-only",
                    "% is append-only")


def downgrade() -> None:
    allow_rewrites(_TABLES, "hcp_optimizer_append_only")
    for table in reversed(_TABLES):
        op.drop_table(table)
