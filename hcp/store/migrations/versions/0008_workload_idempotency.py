"""workloads: client idempotency keys (a retried submission returns the first one)

Revision ID: 0008_workload_idempotency
Revises: 0003_workloads
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_workload_idempotency"
down_revision = "0003_workloads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workloads", sa.Column("idempotency_key", sa.String(200), nullable=True))
    # NULLs are distinct on both backends: only submissions that carry a key are constrained.
    op.create_index("uq_workloads_owner_idempotency_key", "workloads",
                    ["owner", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_workloads_owner_idempotency_key", table_name="workloads")
    op.drop_column("workloads", "idempotency_key")
