"""workloads: container, the image and command of batch and training work

A workload may carry real work: an image by CID and an argument vector, run by the platform's
provider agent on the GPU the router chose.

Revision ID: 0016_workload_container
Revises: 0008_workload_idempotency
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_workload_container"
down_revision = "0008_workload_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.add_column(sa.Column("container", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.drop_column("container")
