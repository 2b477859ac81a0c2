"""workloads: container_started_at, when the agent's container of this run segment started

A workload with a container is metered from its container's start, not from its placement:
the image pull is not the customer's GPU time.

Revision ID: 0019_container_started
Revises: 0016_workload_container
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from hcp.store.migrations.frozen_types import UtcDateTime

revision = "0019_container_started"
down_revision = "0016_workload_container"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.add_column(sa.Column("container_started_at", UtcDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.drop_column("container_started_at")
