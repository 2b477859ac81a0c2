"""device_state: held_by, the job or workload that holds the device (hcp.fleet.holds)

A GPU rented to a customer's container, or serving a platform workload, may change mode only
for its holder; the optimizer's and operators' switches are refused while it is held. The
mode check admits RENTED.

Revision ID: 0015_device_holder
Revises: 0014_event_correlation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_device_holder"
down_revision = "0014_event_correlation"
branch_labels = None
depends_on = None


_MODES = "'MINING','INFERENCE','IDLE','CURTAILED'"


def upgrade() -> None:
    with op.batch_alter_table("device_state") as batch:
        batch.add_column(sa.Column("held_by", sa.String(128), nullable=True))
        batch.drop_constraint("ck_device_state_mode", type_="check")
        batch.create_check_constraint("ck_device_state_mode", f"mode IN ({_MODES},'RENTED')")


def downgrade() -> None:
    with op.batch_alter_table("device_state") as batch:
        batch.drop_constraint("ck_device_state_mode", type_="check")
        batch.create_check_constraint("ck_device_state_mode", f"mode IN ({_MODES})")
        batch.drop_column("held_by")
