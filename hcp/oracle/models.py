"""Tables of the oracle: validators' votes, the quorum's findings, penalties applied (one row
per penalty id), providers' standings, hourly reports and the measurements k validators
agreed on, and the signed heartbeats and challenges kept for disputes. The schema itself is
owned by migration ``0012_oracle``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hcp.store.models import Base, UtcDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")
WHO = String(128)
OID = String(36)      # fnd_/pen_/rep_ + 32 hex
SUBJECT = String(160)
KIND = String(16)


class OrcObservation(Base):
    __tablename__ = "orc_observations"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    validator_id: Mapped[str] = mapped_column(WHO)
    provider_id: Mapped[str] = mapped_column(WHO)
    check_kind: Mapped[str] = mapped_column(KIND)
    subject: Mapped[str] = mapped_column(SUBJECT)
    outcome: Mapped[str] = mapped_column(KIND)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    response_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    evidence: Mapped[str | None] = mapped_column(String(64), nullable=True)
    __table_args__ = (
        UniqueConstraint("validator_id", "provider_id", "check_kind", "subject",
                         name="uq_orc_observations_vote"),
        Index("ix_orc_observations_provider", "provider_id", "observed_at"),
    )


class OrcFinding(Base):
    __tablename__ = "orc_findings"
    finding_id: Mapped[str] = mapped_column(OID, primary_key=True)
    provider_id: Mapped[str] = mapped_column(WHO)
    check_kind: Mapped[str] = mapped_column(KIND)
    subject: Mapped[str] = mapped_column(SUBJECT)
    outcome: Mapped[str | None] = mapped_column(KIND, nullable=True)
    agreeing: Mapped[list[str]] = mapped_column(JSON)
    dissenting: Mapped[list[list[str]]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (Index("ix_orc_findings_provider", "provider_id", "decided_at"),)


class OrcPenalty(Base):
    __tablename__ = "orc_penalties"
    penalty_id: Mapped[str] = mapped_column(OID, primary_key=True)
    provider_id: Mapped[str] = mapped_column(WHO, index=True)
    finding_id: Mapped[str] = mapped_column(ForeignKey("orc_findings.finding_id"))
    reason: Mapped[str] = mapped_column(KIND)
    points: Mapped[int] = mapped_column(Integer)
    slash_bps: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When its effect outside this store (the chain's applyPenalty, a slash) was confirmed.
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class OrcStanding(Base):
    __tablename__ = "orc_standings"
    provider_id: Mapped[str] = mapped_column(WHO, primary_key=True)
    state: Mapped[str] = mapped_column(KIND, index=True)
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrcReport(Base):
    __tablename__ = "orc_reports"
    report_id: Mapped[str] = mapped_column(OID, primary_key=True)
    validator_id: Mapped[str] = mapped_column(WHO)
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    providers: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("validator_id", "period_start",
                                       name="uq_orc_reports_period"),
                      Index("ix_orc_reports_period", "period_start"))


class OrcReportRow(Base):
    __tablename__ = "orc_report_rows"
    report_id: Mapped[str] = mapped_column(ForeignKey("orc_reports.report_id", ondelete="CASCADE"),
                                           primary_key=True)
    provider_id: Mapped[str] = mapped_column(WHO, primary_key=True, index=True)
    expected_ms: Mapped[int] = mapped_column(BigInteger)
    up_ms: Mapped[int] = mapped_column(BigInteger)
    heartbeats: Mapped[int] = mapped_column(Integer)
    heartbeat_delay_ms: Mapped[int] = mapped_column(BigInteger)
    downtime_episodes: Mapped[int] = mapped_column(Integer)
    challenges: Mapped[int] = mapped_column(Integer)
    passed: Mapped[int] = mapped_column(Integer)
    timeouts: Mapped[int] = mapped_column(Integer)
    frauds: Mapped[int] = mapped_column(Integer)
    bad_signatures: Mapped[int] = mapped_column(Integer)
    response_ms_total: Mapped[int] = mapped_column(BigInteger)
    responses: Mapped[int] = mapped_column(Integer)
    response_ms_max: Mapped[int] = mapped_column(BigInteger)


class OrcAgreed(Base):
    """A provider's measurements for one period as k validators agreed on them, recorded
    once: the row is the guard that its uptime reaches reputation exactly once."""

    __tablename__ = "orc_agreed"
    provider_id: Mapped[str] = mapped_column(WHO, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    expected_seconds: Mapped[int] = mapped_column(BigInteger)
    up_seconds: Mapped[int] = mapped_column(BigInteger)
    uptime_bps: Mapped[int] = mapped_column(Integer)
    response_ms_avg: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failures: Mapped[int] = mapped_column(Integer)
    validators: Mapped[list[str]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrcHeartbeat(Base):
    """Signed heartbeats kept for evidence (one copy, whichever validator stored it first)."""

    __tablename__ = "orc_heartbeats"
    provider_id: Mapped[str] = mapped_column(WHO, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # Heartbeat.to_wire()
    __table_args__ = (Index("ix_orc_heartbeats_sent", "provider_id", "sent_at"),)


class OrcChallenge(Base):
    """Challenges with their verdicts, kept for evidence and reports."""

    __tablename__ = "orc_challenges"
    challenge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    validator_id: Mapped[str] = mapped_column(WHO)
    provider_id: Mapped[str] = mapped_column(WHO)
    round_id: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(KIND, nullable=True)
    response_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    evidence: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(String(500))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # PossessionChallenge.to_wire()
    __table_args__ = (Index("ix_orc_challenges_provider", "provider_id", "issued_at"),)


class OrcIdentity(Base):
    """The one Ed25519 key (hex) an identity signs with; rotation replaces it in place."""

    __tablename__ = "orc_identities"
    identity: Mapped[str] = mapped_column(WHO, primary_key=True)
    role: Mapped[str] = mapped_column(KIND, index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class OrcEvidence(Base):
    """A disputed job's evidence bundle (canonical body) with the validators' signatures."""

    __tablename__ = "orc_evidence"
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dispute_id: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str] = mapped_column(WHO)
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)         # EvidenceBundle.body()
    signatures: Mapped[list[list[str]]] = mapped_column(JSON)  # [[validator id, hex]], sorted
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
