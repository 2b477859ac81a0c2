"""events: a correlation id column (the decision or request a mode change answers)

The optimizer found a device's commit again by matching ``reason LIKE 'optimizer <id> %'``;
the id now has its own indexed column.

Revision ID: 0014_event_correlation
Revises: 0001_fleet
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_event_correlation"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(128), nullable=True))
    op.create_index("ix_events_correlation_id", "events", ["correlation_id"])


def downgrade() -> None:
    op.drop_index("ix_events_correlation_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("correlation_id")
