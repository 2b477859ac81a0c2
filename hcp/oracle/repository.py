"""The oracle's store: votes, findings, penalties (each applied once, by id), standings,
reports and agreed measurements, and the signed messages kept for disputes.

``commit_decision`` is what makes a killed validator harmless: the finding row, its
penalties, their effect on reputation (when it lives in the same database) and the new
standing are written in one transaction, and a finding already committed commits nothing. A
penalty whose effect lies outside the database (the chain) is recorded with ``applied_at``
empty; the caller applies it passing its id along and then calls ``mark_applied``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from hcp.clock import Clock
from hcp.errors import EquivocationError, StandingConflictError, StoreError
from hcp.oracle import models as m
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.challenge import PossessionChallenge
from hcp.oracle.escalation import Decision, Penalty, PenaltyReason, ProviderState, Standing
from hcp.oracle.evidence import EvidenceBundle, SignedBundle
from hcp.oracle.findings import Check, Finding, Observation, Outcome
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat
from hcp.oracle.report import (
    ROW_FIELDS,
    AgreedMeasurement,
    ProviderMeasurement,
    SignedReport,
    ValidationReport,
)
from hcp.oracle.wire import from_ms, to_ms

log = logging.getLogger(__name__)

PenaltyEffect = Callable[[Session, Penalty], None]
AgreedEffect = Callable[[Session, AgreedMeasurement], None]
_BATCH = 1000


def standing_to_json(st: Standing) -> dict[str, Any]:
    return {"state": st.state.value, "since": to_ms(st.since),
            "strikes": {o.value: n for o, n in st.strikes},
            "consecutive_timeouts": st.consecutive_timeouts, "clean_passes": st.clean_passes,
            "recent": list(st.recent), "version": st.version}


def standing_from_json(provider_id: str, d: dict[str, Any]) -> Standing:
    return Standing(provider_id, ProviderState(d["state"]), from_ms(d["since"]),
                    tuple(sorted((Outcome(o), int(n)) for o, n in d["strikes"].items())),
                    int(d["consecutive_timeouts"]), int(d["clean_passes"]),
                    tuple(d["recent"]), int(d["version"]))


def _observation(r: m.OrcObservation) -> Observation:
    return Observation(r.validator_id, r.provider_id, Check(r.check_kind), r.subject,
                       Outcome(r.outcome), r.observed_at, r.response_ms, r.evidence)


def _insert_ignore(s: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, in batches (SQLite and PostgreSQL)."""
    if not rows:
        return
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).on_conflict_do_nothing()
    for i in range(0, len(rows), _BATCH):
        s.execute(stmt, rows[i:i + _BATCH])


class OracleRepository:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # -- votes and findings ---------------------------------------------------------------
    def record_observations(self, observations: Iterable[Observation]) -> None:
        """Store votes; a vote already stored (same validator and subject) is kept as it was."""
        rows = [{"validator_id": o.validator_id, "provider_id": o.provider_id,
                 "check_kind": o.check.value, "subject": o.subject, "outcome": o.outcome.value,
                 "observed_at": o.observed_at, "response_ms": o.response_ms,
                 "evidence": o.evidence} for o in observations]
        try:
            with Session(self.engine) as s, s.begin():
                _insert_ignore(s, m.OrcObservation.__table__, rows)
        except SQLAlchemyError as exc:
            # Typed, so a validator holds its votes for the next try (hcp.oracle.outbox).
            raise StoreError(f"votes not stored: {type(exc).__name__}") from exc

    def observations(self, provider_id: str, check: Check | None = None,
                     subject: str | None = None) -> list[Observation]:
        q = select(m.OrcObservation).where(m.OrcObservation.provider_id == provider_id)
        if check is not None:
            q = q.where(m.OrcObservation.check_kind == check.value)
        if subject is not None:
            q = q.where(m.OrcObservation.subject == subject)
        with Session(self.engine) as s:
            return [_observation(r) for r in s.scalars(q.order_by(m.OrcObservation.id))]

    def record_finding(self, finding: Finding) -> bool:
        """Store a finding with no effect (no quorum); False if it was stored already."""
        try:
            with Session(self.engine) as s, s.begin():
                if s.get(m.OrcFinding, finding.finding_id) is not None:
                    return False
                s.add(self._finding_row(finding))
        except IntegrityError:
            return False
        return True

    def findings(self, provider_id: str, since: datetime | None = None,
                 until: datetime | None = None) -> list[Finding]:
        q = select(m.OrcFinding).where(m.OrcFinding.provider_id == provider_id)
        if since is not None:
            q = q.where(m.OrcFinding.decided_at >= since)
        if until is not None:
            q = q.where(m.OrcFinding.decided_at < until)
        with Session(self.engine) as s:
            return [Finding(r.provider_id, Check(r.check_kind), r.subject,
                            None if r.outcome is None else Outcome(r.outcome), tuple(r.agreeing),
                            tuple((v, Outcome(o)) for v, o in r.dissenting), r.decided_at)
                    for r in s.scalars(q.order_by(m.OrcFinding.decided_at))]

    @staticmethod
    def _finding_row(f: Finding) -> m.OrcFinding:
        return m.OrcFinding(finding_id=f.finding_id, provider_id=f.provider_id,
                            check_kind=f.check.value, subject=f.subject,
                            outcome=None if f.outcome is None else f.outcome.value,
                            agreeing=list(f.agreeing),
                            dissenting=[[v, o.value] for v, o in f.dissenting],
                            decided_at=f.decided_at)

    # -- decisions: exactly once ----------------------------------------------------------
    def commit_decision(self, decision: Decision,
                        effect: PenaltyEffect | None = None) -> list[Penalty]:
        """Write the finding, its penalties (running ``effect`` on each in the same
        transaction) and the standing after it, atomically. Returns the penalties committed
        by this call: none when the finding was committed before (a retry, a restarted
        validator, another validator). ``StandingConflictError`` when the standing moved
        since ``decision.before`` was read: reload, step again, commit again."""
        if decision.duplicate:
            return []
        f = decision.finding
        now = self.clock.now()
        try:
            with Session(self.engine) as s, s.begin():
                if s.get(m.OrcFinding, f.finding_id) is not None:
                    return []
                s.add(self._finding_row(f))
                s.flush()
                for p in decision.penalties:
                    s.add(m.OrcPenalty(penalty_id=p.penalty_id, provider_id=p.provider_id,
                                       finding_id=p.finding_id, reason=p.reason.value,
                                       points=p.points, slash_bps=p.slash_bps, created_at=now,
                                       # a slash is applied outside this store: pending
                                       # until the ledger confirms it (``mark_applied``)
                                       applied_at=now if effect is not None and not p.slash_bps
                                       else None))
                    if effect is not None:
                        effect(s, p)
                s.flush()
                if decision.after != decision.before:
                    self._save_standing(s, decision.before, decision.after, now)
        except IntegrityError:
            log.info("finding %s was committed by another writer", f.finding_id)
            return []
        return list(decision.penalties)

    def _save_standing(self, s: Session, before: Standing, after: Standing, now: datetime) -> None:
        snap = standing_to_json(after)
        row = s.get(m.OrcStanding, after.provider_id)
        if row is None:
            if before.version != 0:
                raise StandingConflictError("the standing is not where it was read",
                                            provider=after.provider_id)
            s.add(m.OrcStanding(provider_id=after.provider_id, state=after.state.value,
                                version=after.version, snapshot=snap, updated_at=now))
            try:
                s.flush()
            except IntegrityError:
                raise StandingConflictError("the standing was created concurrently",
                                            provider=after.provider_id) from None
            return
        res = s.execute(update(m.OrcStanding)
                        .where(m.OrcStanding.provider_id == after.provider_id,
                               m.OrcStanding.version == before.version)
                        .values(state=after.state.value, version=after.version, snapshot=snap,
                                updated_at=now))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise StandingConflictError("the standing changed since it was read",
                                        provider=after.provider_id)

    def standing(self, provider_id: str) -> Standing | None:
        with Session(self.engine) as s:
            row = s.get(m.OrcStanding, provider_id)
            return None if row is None else standing_from_json(provider_id, row.snapshot)

    def standings(self, state: ProviderState | None = None) -> dict[str, Standing]:
        q = select(m.OrcStanding)
        if state is not None:
            q = q.where(m.OrcStanding.state == state.value)
        with Session(self.engine) as s:
            return {r.provider_id: standing_from_json(r.provider_id, r.snapshot)
                    for r in s.scalars(q)}

    def penalties(self, provider_id: str | None = None, pending_only: bool = False) -> list[Penalty]:
        q = select(m.OrcPenalty)
        if provider_id is not None:
            q = q.where(m.OrcPenalty.provider_id == provider_id)
        if pending_only:
            q = q.where(m.OrcPenalty.applied_at.is_(None))
        with Session(self.engine) as s:
            return [Penalty(r.penalty_id, r.provider_id, r.finding_id, PenaltyReason(r.reason),
                            r.points, r.slash_bps)
                    for r in s.scalars(q.order_by(m.OrcPenalty.created_at, m.OrcPenalty.penalty_id))]

    def mark_applied(self, penalty_id: str) -> bool:
        """Record that a penalty's outside effect is done; False if it already was."""
        with Session(self.engine) as s, s.begin():
            res = s.execute(update(m.OrcPenalty).where(m.OrcPenalty.penalty_id == penalty_id,
                                                       m.OrcPenalty.applied_at.is_(None))
                            .values(applied_at=self.clock.now()))
            return res.rowcount == 1  # type: ignore[attr-defined]

    # -- reports ----------------------------------------------------------------------------
    def save_report(self, signed: SignedReport) -> bool:
        """Store a signed report and its rows; False if stored already. A validator's second,
        different report for one period is refused."""
        r = signed.report
        digest = r.digest
        report_id = "rep_" + digest[:32]
        with Session(self.engine) as s, s.begin():
            if s.get(m.OrcReport, report_id) is not None:
                return False
            other = s.scalar(select(m.OrcReport.report_id).where(
                m.OrcReport.validator_id == r.validator_id,
                m.OrcReport.period_start == r.period_start))
            if other is not None:
                raise EquivocationError("this validator already reported on this period",
                                        validator=r.validator_id, report_id=other)
            s.add(m.OrcReport(report_id=report_id, validator_id=r.validator_id,
                              period_start=r.period_start, period_end=r.period_end,
                              digest=digest, signature=signed.signature.hex(),
                              providers=len(r.measurements), created_at=self.clock.now()))
            s.flush()
            rows = [{"report_id": report_id, **dict(zip(ROW_FIELDS, mm.row(), strict=True))}
                    for mm in r.measurements]
            for i in range(0, len(rows), _BATCH):
                s.execute(m.OrcReportRow.__table__.insert(), rows[i:i + _BATCH])
        return True

    def reports(self, period_start: datetime) -> list[SignedReport]:
        with Session(self.engine) as s:
            heads = list(s.scalars(select(m.OrcReport).where(
                m.OrcReport.period_start == period_start).order_by(m.OrcReport.validator_id)))
            out = []
            for h in heads:
                rows = s.execute(select(m.OrcReportRow).where(
                    m.OrcReportRow.report_id == h.report_id)).scalars()
                ms = sorted((ProviderMeasurement(*[getattr(x, f) for f in ROW_FIELDS])
                             for x in rows), key=lambda x: x.provider_id)
                out.append(SignedReport(ValidationReport(h.validator_id, h.period_start,
                                                         h.period_end, tuple(ms)),
                                        bytes.fromhex(h.signature)))
            return out

    def commit_agreed(self, agreed: AgreedMeasurement, effect: AgreedEffect | None = None) -> bool:
        """Record a provider's agreed measurements for a period once (running ``effect``, e.g.
        adding its uptime to reputation, in the same transaction); False if recorded before."""
        try:
            with Session(self.engine) as s, s.begin():
                if s.get(m.OrcAgreed, (agreed.provider_id, agreed.period_start)) is not None:
                    return False
                s.add(m.OrcAgreed(provider_id=agreed.provider_id, period_start=agreed.period_start,
                                  period_end=agreed.period_end,
                                  expected_seconds=agreed.expected_seconds,
                                  up_seconds=agreed.up_seconds, uptime_bps=agreed.uptime_bps,
                                  response_ms_avg=agreed.response_ms_avg,
                                  failures=agreed.failures, validators=list(agreed.validators),
                                  recorded_at=self.clock.now()))
                s.flush()
                if effect is not None:
                    effect(s, agreed)
        except IntegrityError:
            return False
        return True

    # -- evidence ---------------------------------------------------------------------------
    def record_heartbeats(self, accepted: Iterable[AcceptedHeartbeat]) -> None:
        rows = [{"provider_id": a.heartbeat.provider_id, "seq": a.heartbeat.seq,
                 "sent_at": a.heartbeat.sent_at, "received_at": a.received_at,
                 "body": a.heartbeat.to_wire()} for a in accepted]
        with Session(self.engine) as s, s.begin():
            _insert_ignore(s, m.OrcHeartbeat.__table__, rows)

    def last_heartbeats(self) -> dict[str, tuple[int, datetime]]:
        """provider -> (seq, arrival) of its last kept heartbeat: where a restarted validator
        resumes counting (a replay of an older one stays refused)."""
        last = (select(m.OrcHeartbeat.provider_id, func.max(m.OrcHeartbeat.seq).label("seq"))
                .group_by(m.OrcHeartbeat.provider_id).subquery())
        q = select(m.OrcHeartbeat.provider_id, m.OrcHeartbeat.seq, m.OrcHeartbeat.received_at).join(
            last, (m.OrcHeartbeat.provider_id == last.c.provider_id)
            & (m.OrcHeartbeat.seq == last.c.seq))
        with Session(self.engine) as s:
            return {pid: (seq, at) for pid, seq, at in s.execute(q)}

    def open_observations(self, since: datetime) -> list[Observation]:
        """Votes since ``since`` on subjects with no finding yet: what a restarted coordinator
        puts back in its quorum book."""
        q = select(m.OrcObservation).where(m.OrcObservation.observed_at >= since)
        with Session(self.engine) as s:
            out = [_observation(r) for r in s.scalars(q.order_by(m.OrcObservation.id))]
            ids = sorted({o.finding_id for o in out})
            done: set[str] = set()
            for i in range(0, len(ids), _BATCH):
                done.update(s.scalars(select(m.OrcFinding.finding_id).where(
                    m.OrcFinding.finding_id.in_(ids[i:i + _BATCH]))))
        return [o for o in out if o.finding_id not in done]

    def heartbeats(self, provider_id: str, since: datetime, until: datetime) -> list[Heartbeat]:
        q = (select(m.OrcHeartbeat.body)
             .where(m.OrcHeartbeat.provider_id == provider_id, m.OrcHeartbeat.sent_at >= since,
                    m.OrcHeartbeat.sent_at < until).order_by(m.OrcHeartbeat.seq))
        with Session(self.engine) as s:
            return [Heartbeat.from_wire(b) for b in s.scalars(q)]

    def record_results(self, results: Iterable[ChallengeResult]) -> None:
        rows = [{"challenge_id": r.challenge.challenge_id, "validator_id": r.challenge.validator_id,
                 "provider_id": r.provider_id, "round_id": r.challenge.round_id,
                 "issued_at": r.challenge.issued_at, "checked_at": r.checked_at,
                 "outcome": None if r.outcome is None else r.outcome.value,
                 "response_ms": r.response_ms, "evidence": r.evidence, "detail": r.detail[:500],
                 "body": r.challenge.to_wire()} for r in results]
        with Session(self.engine) as s, s.begin():
            _insert_ignore(s, m.OrcChallenge.__table__, rows)

    def results(self, provider_id: str, since: datetime, until: datetime) -> list[ChallengeResult]:
        q = (select(m.OrcChallenge)
             .where(m.OrcChallenge.provider_id == provider_id, m.OrcChallenge.issued_at >= since,
                    m.OrcChallenge.issued_at < until)
             .order_by(m.OrcChallenge.issued_at, m.OrcChallenge.challenge_id))
        with Session(self.engine) as s:
            return [ChallengeResult(PossessionChallenge.from_wire(r.body),
                                    None if r.outcome is None else Outcome(r.outcome),
                                    r.checked_at, r.response_ms, r.detail, r.evidence)
                    for r in s.scalars(q)]

    # -- disputes ---------------------------------------------------------------------------
    def save_evidence(self, signed: SignedBundle) -> bool:
        """Keep a dispute's bundle with its signatures; False if the job has one already."""
        b = signed.bundle
        try:
            with Session(self.engine) as s, s.begin():
                if s.get(m.OrcEvidence, b.job_id) is not None:
                    return False
                s.add(m.OrcEvidence(job_id=b.job_id, dispute_id=b.dispute_id,
                                    provider_id=b.provider_id, sha256=b.sha256, body=b.body(),
                                    signatures=[[v, sig.hex()] for v, sig in signed.signatures],
                                    created_at=self.clock.now()))
        except IntegrityError:
            return False
        return True

    def evidence(self, job_id: str) -> SignedBundle | None:
        with Session(self.engine) as s:
            row = s.get(m.OrcEvidence, job_id)
            if row is None:
                return None
            return SignedBundle(EvidenceBundle.from_body(row.body),
                                tuple((v, bytes.fromhex(sig)) for v, sig in row.signatures))

    def prune(self, before: datetime) -> dict[str, int]:
        """Drop kept messages and votes older than ``before`` (findings, penalties, standings,
        reports and agreed measurements stay)."""
        with Session(self.engine) as s, s.begin():
            out = {}
            for name, table, col in (
                    ("heartbeats", m.OrcHeartbeat, m.OrcHeartbeat.received_at),
                    ("challenges", m.OrcChallenge, m.OrcChallenge.checked_at),
                    ("observations", m.OrcObservation, m.OrcObservation.observed_at)):
                out[name] = s.execute(delete(table).where(col < before)).rowcount  # type: ignore[attr-defined]
            return out

