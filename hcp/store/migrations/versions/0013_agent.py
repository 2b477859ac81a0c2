"""agent: instance specs, container runs, log lines and metric samples (append-only evidence)

Revision ID: 0013_agent
Revises: 0005_marketplace
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_agent"
down_revision = "0005_marketplace"
branch_labels = None
depends_on = None

_JOB = sa.String(36)
_TS = sa.DateTime(timezone=True)
_EVIDENCE = ("ag_log_lines", "ag_metric_samples")


def upgrade() -> None:
    op.create_table(
        "ag_instances",
        sa.Column("job_id", _JOB, primary_key=True),
        sa.Column("renter", sa.String(128), nullable=False, index=True),
        sa.Column("network", sa.String(8), nullable=False),
        sa.Column("command", sa.JSON, nullable=True),
        sa.Column("env", sa.JSON, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("network IN ('none','egress')", name="ck_ag_instances_network"),
    )
    op.create_table(
        "ag_runs",
        sa.Column("job_id", _JOB, primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False, index=True),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("gpu_id", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("container_id", sa.String(80), nullable=True),
        sa.Column("image_id", sa.String(80), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("detail", sa.String(1000), nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("oom_killed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("simulated_gpu", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("network", sa.String(8), nullable=False),
        sa.Column("container_started_at", _TS, nullable=True),
        sa.Column("container_finished_at", _TS, nullable=True),
        sa.Column("usage_seconds", sa.BigInteger, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "phase IN ('PULLING','STARTING','RUNNING','STOPPING','SETTLED','FAILED')",
            name="ck_ag_runs_phase"),
    )
    op.create_table(
        "ag_log_lines",
        sa.Column("job_id", _JOB, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("stream", sa.String(6), nullable=False),
        sa.Column("ts_ns", sa.BigInteger, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("partial", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("stream IN ('stdout','stderr')", name="ck_ag_log_lines_stream"),
        sa.CheckConstraint("seq >= 0", name="ck_ag_log_lines_seq"),
    )
    # Resuming a capture counts the lines stored from one second on.
    op.create_index("ix_ag_log_lines_ts", "ag_log_lines", ["job_id", "ts_ns"])
    op.create_table(
        "ag_metric_samples",
        sa.Column("job_id", _JOB, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("cpu_pct", sa.Float, nullable=False),
        sa.Column("mem_bytes", sa.BigInteger, nullable=False),
        sa.Column("mem_limit_bytes", sa.BigInteger, nullable=False),
        sa.Column("pids", sa.Integer, nullable=False),
        sa.Column("gpu", sa.JSON, nullable=False),
        sa.CheckConstraint("seq >= 0", name="ck_ag_metric_samples_seq"),
    )
    _forbid_rewrites()


def _forbid_rewrites() -> None:
    # Logs and samples are a dispute's evidence: once stored, never changed or removed.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _EVIDENCE:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;")
    elif dialect == "postgresql":
        op.execute("CREATE FUNCTION ag_evidence_append_only() RETURNS trigger AS $$ "
                   "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; "
                   "$$ LANGUAGE plpgsql;")
        for table in _EVIDENCE:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION ag_evidence_append_only();")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _EVIDENCE:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        elif dialect == "sqlite":
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ag_evidence_append_only()")
    op.drop_index("ix_ag_log_lines_ts", table_name="ag_log_lines")
    for table in ("ag_metric_samples", "ag_log_lines", "ag_runs", "ag_instances"):
        op.drop_table(table)
