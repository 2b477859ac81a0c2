"""metrics history: per-GPU minutes and hours of power, temperature, utilization, hashrate

The store's own downsampled history, read by ``GET /api/v1/metrics/...`` where no Prometheus
runs (the embedded default). Sums and peaks, so minutes add into hours exactly.

Revision ID: 0018_metrics_history
Revises: 0001_fleet
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_metrics_history"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None


def _table(name: str, key: str) -> None:
    op.create_table(
        name,
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column(key, sa.BigInteger, primary_key=True),
        sa.Column("facility", sa.String(64), nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("power_sum", sa.Float, nullable=False),
        sa.Column("power_max", sa.Float, nullable=False),
        sa.Column("temperature_sum", sa.Float, nullable=False),
        sa.Column("temperature_max", sa.Float, nullable=False),
        sa.Column("utilization_sum", sa.Float, nullable=False),
        sa.Column("hashrate_sum", sa.Float, nullable=False),
    )
    op.create_index(f"ix_{name}_facility", name, ["facility", key])
    op.create_index(f"ix_{name}_{key}", name, [key])


def upgrade() -> None:
    _table("hist_device_minutes", "minute")
    _table("hist_device_hours", "hour")


def downgrade() -> None:
    for name, key in (("hist_device_hours", "hour"), ("hist_device_minutes", "minute")):
        op.drop_index(f"ix_{name}_{key}", table_name=name)
        op.drop_index(f"ix_{name}_facility", table_name=name)
        op.drop_table(name)
