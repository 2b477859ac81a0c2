"""workloads: submitted workloads, their state, placement and metered cost

Revision ID: 0003_workloads
Revises: 0001_fleet
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.frozen_types import UtcDateTime

revision = "0003_workloads"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None

_STATES = "'queued','scheduled','running','completed','failed','cancelled'"
_TYPES = "'inference','embedding','training','batch'"


def upgrade() -> None:
    op.create_table(
        "workloads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requirements", sa.JSON, nullable=False),
        sa.Column("sla", sa.JSON, nullable=False),
        sa.Column("interruptible", sa.Boolean, nullable=False),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("scheduled_at", UtcDateTime, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("gpu_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost_micro_usd", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("preempted_mining", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("seq", name="uq_workloads_seq"),
        sa.CheckConstraint(f"state IN ({_STATES})", name="ck_workloads_state"),
        sa.CheckConstraint(f"type IN ({_TYPES})", name="ck_workloads_type"),
        sa.CheckConstraint("priority BETWEEN 1 AND 10", name="ck_workloads_priority"),
        sa.CheckConstraint("gpu_ms >= 0 AND cost_micro_usd >= 0", name="ck_workloads_metering"),
    )
    op.create_index("ix_workloads_owner_seq", "workloads", ["owner", "seq"])
    op.create_index("ix_workloads_state", "workloads", ["state"])


def downgrade() -> None:
    op.drop_index("ix_workloads_state", table_name="workloads")
    op.drop_index("ix_workloads_owner_seq", table_name="workloads")
    op.drop_table("workloads")
