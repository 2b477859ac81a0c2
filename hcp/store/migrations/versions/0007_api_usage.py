"""api: inference usage per client and model

Revision ID: 0007_api_usage
Revises: 0001_fleet
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.frozen_types import UtcDateTime

revision = "0007_api_usage"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_usage",
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("requests >= 0 AND input_tokens >= 0", name="ck_inference_usage_nonneg"),
    )


def downgrade() -> None:
    op.drop_table("inference_usage")
