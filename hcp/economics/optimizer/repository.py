"""Reads and writes of the optimizer's record, and the fleet state it decides on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hcp.economics.optimizer import models as om
from hcp.economics.optimizer.types import (
    REASON_PREFIX,
    DecisionRecord,
    DeviceMode,
    ModeChange,
    OutcomeRecord,
    OutcomeStatus,
    PreemptionRecord,
    StepRecord,
)
from hcp.errors import StoreError
from hcp.store import models as m
from hcp.store.db import transaction
from hcp.store.events import EventKind

log = logging.getLogger(__name__)


class OptimizerRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    # -- fleet state (owned by the fleet; read here in one query) ------------------------
    def device_modes(self) -> dict[str, DeviceMode]:
        q = select(m.DeviceState.device_id, m.DeviceState.kind, m.DeviceState.mode,
                   m.DeviceState.generation, m.DeviceState.mode_since, m.DeviceState.held_by)
        with self._tx() as s:
            return {r.device_id: DeviceMode(r.device_id, r.kind, r.mode, r.generation, r.mode_since,
                                            r.held_by)
                    for r in s.execute(q)}

    def mode_changes_since(self, since: datetime) -> list[ModeChange]:
        """Committed mode changes after ``since``, oldest first (from the append-only event log)."""
        q = (select(m.Event.device_id, m.Event.at, m.Event.from_mode, m.Event.to_mode,
                    m.Event.total_ms)
             .where(m.Event.kind == EventKind.MODE_CHANGE.value, m.Event.at > since)
             .order_by(m.Event.at, m.Event.id))
        with self._tx() as s:
            return [ModeChange(r.device_id, r.at, r.from_mode, r.to_mode, r.total_ms)
                    for r in s.execute(q)]

    def committed_change_for(self, decision: DecisionRecord) -> tuple[int, str] | None:
        """(generation, mode) of the committed change the device made for ``decision``, if any.

        Devices record the decision id as the change's correlation id. Changes committed
        before that column existed named the decision in their reason (``switch_reason``).
        """
        tag = f"{REASON_PREFIX} {decision.decision_id} %"
        named = or_(m.Event.correlation_id == decision.decision_id,
                    and_(m.Event.correlation_id.is_(None), m.Event.reason.like(tag)))
        q = (select(m.Event.generation, m.Event.to_mode)
             .where(m.Event.kind == EventKind.MODE_CHANGE.value,
                    m.Event.device_id == decision.device_id,
                    m.Event.generation > decision.issued_generation, named)
             .order_by(m.Event.generation).limit(1))
        with self._tx() as s:
            row = s.execute(q).first()
        return None if row is None else (int(row.generation), str(row.to_mode))

    # -- steps ----------------------------------------------------------------------------
    def last_step(self) -> StepRecord | None:
        q = select(om.OptimizerStep).order_by(om.OptimizerStep.tick_at.desc()).limit(1)
        with self._tx() as s:
            row = s.scalars(q).first()
            return None if row is None else _step(row)

    def steps(self, limit: int = 100) -> list[StepRecord]:
        q = select(om.OptimizerStep).order_by(om.OptimizerStep.tick_at.desc()).limit(limit)
        with self._tx() as s:
            return [_step(r) for r in s.scalars(q)]

    def record_step(self, step: StepRecord, decisions: Sequence[DecisionRecord]) -> bool:
        """Write a processed tick and its decisions as issued, in one transaction.

        Returns False (writing nothing) when this tick was already processed.
        """
        try:
            with self._tx() as s:
                if s.scalar(select(om.OptimizerStep.id).where(om.OptimizerStep.tick_at == step.tick_at)):
                    return False
                s.add(om.OptimizerStep(
                    tick_at=step.tick_at, at=step.at, tick=step.tick, decisions=len(decisions),
                    period_start=step.period_start,
                    realized_profit_micro_usd=step.realized_profit_micro_usd,
                    policy_state=step.policy_state))
                s.add_all(om.OptimizerDecision(**d.__dict__) for d in decisions)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                # Another writer processed the same tick (or re-issued one of its decisions).
                log.warning("tick %s already recorded: %s", step.tick_at.isoformat(), exc.__cause__)
                return False
            raise
        return True

    # -- decisions and outcomes -----------------------------------------------------------
    def record_realized(self, tick_at: datetime, period_end: datetime,
                        per_device: dict[str, int]) -> int:
        """Record what each decision of the step at ``tick_at`` realized: its device's profit
        over the period that decision governed (until ``period_end``, the next step). Once per
        decision (a retried step writes nothing twice). Returns rows written."""
        if not per_device:
            return 0
        d, r = om.OptimizerDecision, om.OptimizerRealized
        with self._tx() as s:
            rows = s.execute(select(d.decision_id, d.device_id, d.issued_at)
                             .outerjoin(r, r.decision_id == d.decision_id)
                             .where(d.tick_at == tick_at, r.decision_id.is_(None))).all()
            n = 0
            for decision_id, device_id, issued_at in rows:
                if device_id in per_device:
                    s.add(r(decision_id=decision_id, period_start=issued_at, period_end=period_end,
                            realized_profit_micro_usd=int(per_device[device_id])))
                    n += 1
            return n

    def record_preemption(self, p: PreemptionRecord) -> None:
        """One ``preemption`` event: which holder was stopped on which GPU, and why."""
        with self._tx() as s:
            s.add(m.Event(at=p.at, kind=EventKind.PREEMPTION.value, device_id=p.device_id,
                          facility=p.facility, reason=p.reason[:200],
                          correlation_id=p.holder.partition(":")[2][:128] or None,
                          payload={"holder": p.holder, "ok": p.ok, "error": p.error}))

    def record_outcomes(self, outcomes: Sequence[OutcomeRecord],
                        decisions: Sequence[DecisionRecord]) -> list[OutcomeRecord]:
        """Write outcomes (and one ``optimizer_decision`` event each) in one transaction.

        A decision that already has an outcome keeps it: returns the outcomes actually written.
        """
        if not outcomes:
            return []
        by_id = {d.decision_id: d for d in decisions}
        ids = [o.decision_id for o in outcomes]
        with self._tx() as s:
            have = set(s.scalars(select(om.OptimizerOutcome.decision_id)
                                 .where(om.OptimizerOutcome.decision_id.in_(ids))))
            written = [o for o in outcomes if o.decision_id not in have]
            for o in written:
                s.add(om.OptimizerOutcome(
                    decision_id=o.decision_id, at=o.at, status=o.status.value, latency_ms=o.latency_ms,
                    generation=o.generation, error=(o.error or None) and o.error[:300],
                    realized_profit_micro_usd=o.realized_profit_micro_usd))
                d = by_id.get(o.decision_id)
                s.add(m.Event(
                    at=o.at, kind=EventKind.OPTIMIZER_DECISION.value, device_id=d.device_id if d else None,
                    facility=d.facility if d else None, from_mode=d.from_mode if d else None,
                    to_mode=d.to_mode if d else None, total_ms=o.latency_ms,
                    reason=f"{o.status.value} {d.reason if d else ''}".strip()[:200],
                    payload={"decision_id": o.decision_id, "status": o.status.value,
                             "generation": o.generation, "error": o.error,
                             "expected_gain_usd_per_hour": d.expected_gain_usd_per_hour if d else None,
                             "realized_profit_micro_usd": o.realized_profit_micro_usd}))
        return written

    def pending(self) -> list[DecisionRecord]:
        """Decisions written as issued that have no outcome yet (a crash between the two)."""
        d, o = om.OptimizerDecision, om.OptimizerOutcome
        q = (select(d).outerjoin(o, o.decision_id == d.decision_id)
             .where(o.decision_id.is_(None)).order_by(d.issued_at, d.decision_id))
        with self._tx() as s:
            return [_decision(r) for r in s.scalars(q)]

    def decisions(self, limit: int = 50, device_id: str | None = None
                  ) -> list[tuple[DecisionRecord, OutcomeRecord | None]]:
        """The latest decisions, newest first, each with its outcome if it has one."""
        d, o, r = om.OptimizerDecision, om.OptimizerOutcome, om.OptimizerRealized
        q = (select(d, o, r.realized_profit_micro_usd).outerjoin(o, o.decision_id == d.decision_id)
             .outerjoin(r, r.decision_id == d.decision_id)
             .order_by(d.issued_at.desc(), d.decision_id.desc()).limit(max(1, min(limit, 10_000))))
        if device_id is not None:
            q = q.where(d.device_id == device_id)
        with self._tx() as s:
            return [(_decision(a), None if b is None else _outcome(b, realized))
                    for a, b, realized in s.execute(q)]

    # -- plumbing -----------------------------------------------------------------------
    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self._session, "optimizer store operation")


def _step(r: om.OptimizerStep) -> StepRecord:
    return StepRecord(tick_at=r.tick_at, at=r.at, tick=r.tick, decisions=r.decisions,
                      period_start=r.period_start, realized_profit_micro_usd=r.realized_profit_micro_usd,
                      policy_state=r.policy_state)


def _decision(r: om.OptimizerDecision) -> DecisionRecord:
    return DecisionRecord(
        decision_id=r.decision_id, tick_at=r.tick_at, issued_at=r.issued_at, device_id=r.device_id,
        facility=r.facility, kind=r.kind, from_mode=r.from_mode, to_mode=r.to_mode, reason=r.reason,
        expected_gain_usd_per_hour=r.expected_gain_usd_per_hour, issued_generation=r.issued_generation)


def _outcome(r: om.OptimizerOutcome, realized: int | None = None) -> OutcomeRecord:
    return OutcomeRecord(decision_id=r.decision_id, at=r.at, status=OutcomeStatus(r.status),
                         latency_ms=r.latency_ms, generation=r.generation, error=r.error,
                         realized_profit_micro_usd=realized)


def outcome_dict(d: DecisionRecord, o: OutcomeRecord | None) -> dict[str, Any]:
    """A decision and its outcome as one JSON-ready row (views, API, CLI)."""
    return {
        "decision_id": d.decision_id, "tick_at": d.tick_at.isoformat(), "issued_at": d.issued_at.isoformat(),
        "device_id": d.device_id, "facility": d.facility, "kind": d.kind, "from_mode": d.from_mode,
        "to_mode": d.to_mode, "reason": d.reason, "expected_gain_usd_per_hour": d.expected_gain_usd_per_hour,
        "status": o.status.value if o else "ISSUED", "latency_ms": o.latency_ms if o else None,
        "generation": o.generation if o else None, "error": o.error if o else None,
        "realized_profit_micro_usd": o.realized_profit_micro_usd if o else None,
    }
