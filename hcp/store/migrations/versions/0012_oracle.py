"""oracle: validators' votes, findings, penalties by id, standings, reports, agreed measurements,
signed heartbeats and challenges kept for disputes

Revision ID: 0012_oracle
Revises: 0005_marketplace
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_oracle"
down_revision = "0005_marketplace"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_WHO = sa.String(128)
_OID = sa.String(36)
_KIND = sa.String(16)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orc_observations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("validator_id", _WHO, nullable=False),
        sa.Column("provider_id", _WHO, nullable=False),
        sa.Column("check_kind", _KIND, nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("outcome", _KIND, nullable=False),
        sa.Column("observed_at", _TS, nullable=False),
        sa.Column("response_ms", sa.BigInteger, nullable=True),
        sa.Column("evidence", sa.String(64), nullable=True),
        sa.UniqueConstraint("validator_id", "provider_id", "check_kind", "subject",
                            name="uq_orc_observations_vote"),
    )
    op.create_index("ix_orc_observations_provider", "orc_observations",
                    ["provider_id", "observed_at"])
    op.create_table(
        "orc_findings",
        sa.Column("finding_id", _OID, primary_key=True),
        sa.Column("provider_id", _WHO, nullable=False),
        sa.Column("check_kind", _KIND, nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("outcome", _KIND, nullable=True),
        sa.Column("agreeing", sa.JSON, nullable=False),
        sa.Column("dissenting", sa.JSON, nullable=False),
        sa.Column("decided_at", _TS, nullable=False),
    )
    op.create_index("ix_orc_findings_provider", "orc_findings", ["provider_id", "decided_at"])
    op.create_table(
        "orc_penalties",
        sa.Column("penalty_id", _OID, primary_key=True),
        sa.Column("provider_id", _WHO, nullable=False),
        sa.Column("finding_id", _OID, sa.ForeignKey("orc_findings.finding_id"), nullable=False),
        sa.Column("reason", _KIND, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("slash_bps", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("applied_at", _TS, nullable=True),
        sa.CheckConstraint("points >= 0 AND slash_bps >= 0 AND slash_bps <= 10000",
                           name="ck_orc_penalties_amounts"),
    )
    op.create_index("ix_orc_penalties_provider_id", "orc_penalties", ["provider_id"])
    op.create_table(
        "orc_standings",
        sa.Column("provider_id", _WHO, primary_key=True),
        sa.Column("state", _KIND, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_orc_standings_state", "orc_standings", ["state"])
    op.create_table(
        "orc_reports",
        sa.Column("report_id", _OID, primary_key=True),
        sa.Column("validator_id", _WHO, nullable=False),
        sa.Column("period_start", _TS, nullable=False),
        sa.Column("period_end", _TS, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("providers", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("validator_id", "period_start", name="uq_orc_reports_period"),
    )
    op.create_index("ix_orc_reports_period", "orc_reports", ["period_start"])
    op.create_table(
        "orc_report_rows",
        sa.Column("report_id", _OID, sa.ForeignKey("orc_reports.report_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("provider_id", _WHO, primary_key=True),
        sa.Column("expected_ms", sa.BigInteger, nullable=False),
        sa.Column("up_ms", sa.BigInteger, nullable=False),
        sa.Column("heartbeats", sa.Integer, nullable=False),
        sa.Column("heartbeat_delay_ms", sa.BigInteger, nullable=False),
        sa.Column("downtime_episodes", sa.Integer, nullable=False),
        sa.Column("challenges", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("timeouts", sa.Integer, nullable=False),
        sa.Column("frauds", sa.Integer, nullable=False),
        sa.Column("bad_signatures", sa.Integer, nullable=False),
        sa.Column("response_ms_total", sa.BigInteger, nullable=False),
        sa.Column("responses", sa.Integer, nullable=False),
        sa.Column("response_ms_max", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_orc_report_rows_provider_id", "orc_report_rows", ["provider_id"])
    op.create_table(
        "orc_agreed",
        sa.Column("provider_id", _WHO, primary_key=True),
        sa.Column("period_start", _TS, primary_key=True),
        sa.Column("period_end", _TS, nullable=False),
        sa.Column("expected_seconds", sa.BigInteger, nullable=False),
        sa.Column("up_seconds", sa.BigInteger, nullable=False),
        sa.Column("uptime_bps", sa.Integer, nullable=False),
        sa.Column("response_ms_avg", sa.BigInteger, nullable=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("validators", sa.JSON, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    op.create_table(
        "orc_heartbeats",
        sa.Column("provider_id", _WHO, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("sent_at", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_orc_heartbeats_sent", "orc_heartbeats", ["provider_id", "sent_at"])
    op.create_index("ix_orc_heartbeats_received_at", "orc_heartbeats", ["received_at"])
    op.create_table(
        "orc_challenges",
        sa.Column("challenge_id", sa.String(64), primary_key=True),
        sa.Column("validator_id", _WHO, nullable=False),
        sa.Column("provider_id", _WHO, nullable=False),
        sa.Column("round_id", sa.String(128), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("checked_at", _TS, nullable=False),
        sa.Column("outcome", _KIND, nullable=True),
        sa.Column("response_ms", sa.BigInteger, nullable=True),
        sa.Column("evidence", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_orc_challenges_provider", "orc_challenges", ["provider_id", "issued_at"])


def downgrade() -> None:
    for table in ("orc_challenges", "orc_heartbeats", "orc_agreed", "orc_report_rows",
                  "orc_reports", "orc_standings", "orc_penalties", "orc_findings",
                  "orc_observations"):
        op.drop_table(table)
