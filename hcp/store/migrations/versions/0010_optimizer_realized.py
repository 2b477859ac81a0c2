"""optimizer: what each decision realized over the period it governed (append-only)

Outcomes are written when a decision is applied; what it earned is known only at the next
step, so it has its own append-only table instead of an update of the outcome.

Revision ID: 0010_optimizer_realized
Revises: 0002_optimizer
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_optimizer_realized"
down_revision = "0002_optimizer"
branch_labels = None
depends_on = None

_TABLE = "optimizer_realized"
# Frozen copy of the UTC datetime column type: timezone-aware on every backend.
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("decision_id", sa.String(128), sa.ForeignKey("optimizer_decisions.decision_id"),
                  primary_key=True),
        sa.Column("period_start", _AT, nullable=False),
        sa.Column("period_end", _AT, nullable=False),
        sa.Column("realized_profit_micro_usd", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {_TABLE}_no_{action.lower()} BEFORE {action} ON {_TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, '{_TABLE} is append-only'); END;")
    else:
        op.execute("CREATE FUNCTION optimizer_realized_append_only() RETURNS trigger AS $$ "
                   "BEGIN RAISE EXCEPTION 'optimizer_realized is append-only'; END; "
                   "$$ LANGUAGE plpgsql;")
        op.execute(f"CREATE TRIGGER {_TABLE}_append_only BEFORE UPDATE OR DELETE ON {_TABLE} "
                   "FOR EACH ROW EXECUTE FUNCTION optimizer_realized_append_only();")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_TABLE}_append_only ON {_TABLE}")
        op.execute("DROP FUNCTION IF EXISTS optimizer_realized_append_only()")
    op.drop_table(_TABLE)
