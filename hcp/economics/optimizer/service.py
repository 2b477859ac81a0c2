"""The optimizer: pull a tick, decide for the whole fleet, apply through a port, record everything.

Restart safety, in order of the writes of one step:
1. the step (tick, realized profit of the period that just ended, policy state after deciding)
   and every decision as *issued* are written in ONE transaction, before anything is sent;
   ``tick_at`` and ``decision_id`` are unique, so a tick is processed once and a decision
   sent at most once;
2. the orders go out, all at once, and are awaited up to the apply timeout (no retries);
3. outcomes are written (unique per decision).
A crash between 1 and 3 leaves decisions issued without outcome. They are never re-sent: once
the apply timeout has passed they are settled against the device's own committed record (its
generation advanced by a change that names the decision, or not), and until then the device
gets no new decision. The policy's dwell state comes back from the last step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hcp.clock import Clock, SystemClock
from hcp.economics.market.source import PriceFeed
from hcp.economics.optimizer.profit import ProfitModel, realized_profit_micro_usd
from hcp.economics.optimizer.repository import OptimizerRepository
from hcp.economics.optimizer.ticks import tick_from_dict, tick_to_dict
from hcp.economics.optimizer.types import (
    ApplyOrder,
    ApplyResult,
    DecisionRecord,
    DeviceMode,
    FleetPort,
    OutcomeRecord,
    OutcomeStatus,
    PolicyLike,
    PreemptionRecord,
    Profitability,
    StepRecord,
    StepResult,
    switch_reason,
)
from hcp.errors import HcpError

log = logging.getLogger(__name__)

_PREEMPT_AGAIN_S = 120.0  # a holder told to stop that still holds its GPU after this is told again


class OptimizerService:
    def __init__(
        self,
        *,
        feed: PriceFeed,
        policy: PolicyLike,
        profit: ProfitModel,
        port: FleetPort,
        repo: OptimizerRepository,
        clock: Clock | None = None,
        apply_timeout_s: float = 10.0,
    ) -> None:
        if apply_timeout_s <= 0:
            raise ValueError("apply_timeout_s must be positive")
        self._feed = feed
        self._policy = policy
        self._profit = profit
        self._port = port
        self._repo = repo
        self._clock = clock or SystemClock()
        self._timeout_s = apply_timeout_s
        self._last: StepRecord | None = None
        self._last_tick: Any = None
        self._recovered = False
        # (device, holder) -> when it was told to stop: not told again until it had time to
        # (the agent stops the container with a grace period, then settles and releases).
        self._preempted: dict[tuple[str, str], datetime] = {}

    # -- lifecycle ----------------------------------------------------------------------
    def recover(self) -> StepRecord | None:
        """Load the last processed step and the policy's dwell state from the store."""
        self._last = self._repo.last_step()
        if self._last is not None:
            self._last_tick = tick_from_dict(self._last.tick)
            if self._last.policy_state is not None:
                try:
                    self._policy.load_state_dict(self._last.policy_state)
                except (HcpError, KeyError, TypeError, ValueError) as exc:
                    # A different policy (or version) than the one that saved it: start its
                    # streaks afresh rather than refuse to run.
                    log.warning("stored policy state not loadable (%s); dwell streaks start afresh", exc)
            resume = getattr(self._feed, "resume_after", None)
            if callable(resume):  # a replay skips what was already processed
                resume(self._last.tick_at)
            log.info("optimizer resumed after tick %s", self._last.tick_at.isoformat())
        self._recovered = True
        return self._last

    # -- one step -----------------------------------------------------------------------
    def step(self, now: datetime | None = None) -> StepResult:
        if not self._recovered:
            self.recover()
        now = now or self._clock.now()
        modes = self._repo.device_modes()
        reconciled = self.reconcile(now, modes)
        unsettled = {d.device_id for d in self._repo.pending()}
        tick = self._feed.next_tick(now)
        if tick is None:
            return StepResult(at=now, tick_at=None, skipped="no_tick", reconciled=reconciled)
        if self._last is not None and tick.at <= self._last.tick_at:
            return StepResult(at=now, tick_at=tick.at, skipped="already_processed", reconciled=reconciled)

        profits = self._realized(modes, now)
        before = self._policy.state_dict()
        try:
            # Decision time is the tick's: a replayed series decides (and dwells) in market time.
            # Held GPUs (a customer's rental or workload) are fixed: the policy plans around
            # them, and no decision is ever issued for one (the device would refuse it anyway).
            held = {k for k, v in modes.items() if v.held_by}
            decided = self._policy.decide(tick, {k: v.mode for k, v in modes.items()}, tick.at,
                                          fixed=held)
            held_back = sorted({d.device_id for d in decided if d.device_id in unsettled})
            records = [self._issue(d, modes[d.device_id], now) for d in decided
                       if d.device_id in modes and d.device_id not in unsettled
                       and d.device_id not in held]
            step = StepRecord(
                tick_at=tick.at, at=now, tick=tick_to_dict(tick), decisions=len(records),
                period_start=self._last.at if self._last else None,
                realized_profit_micro_usd=sum(profits.values()) if self._last else None,
                policy_state=self._policy.state_dict())
            recorded = self._repo.record_step(step, records)
        except BaseException:
            # Nothing was recorded: the dwell state must not move ahead of the record either.
            self._policy.load_state_dict(before)
            raise
        if not recorded:  # another optimizer instance got this tick first
            self._policy.load_state_dict(before)
            return StepResult(at=now, tick_at=tick.at, skipped="already_processed", reconciled=reconciled)
        if self._last is not None and profits:
            # The period that just ended was governed by the previous step's decisions: that
            # is what they realized (a decision's own outcome cannot know it yet).
            self._repo.record_realized(self._last.tick_at, now, profits)
        self._last, self._last_tick = step, tick
        if held_back:
            log.warning("held back decisions for %s: an earlier decision is not settled yet", held_back)

        results = self._apply(records)
        done = self._clock.now()
        outcomes = [_outcome(r, done) for r in results]
        self._repo.record_outcomes(outcomes, records)
        preempted = self._preempt(getattr(self._policy, "last_preemptions", None) or (), modes, done)
        for d, o in zip(records, outcomes):
            log.info("decision %s: %s %s -> %s (%s, %+.4f USD/h expected): %s%s", d.decision_id,
                     d.device_id, d.from_mode, d.to_mode, d.reason, d.expected_gain_usd_per_hour,
                     o.status.value, f" in {o.latency_ms:.1f} ms" if o.latency_ms is not None else "")
        return StepResult(at=now, tick_at=tick.at, decisions=records, outcomes=outcomes,
                          reconciled=reconciled, held_back=held_back,
                          realized_profit_micro_usd=step.realized_profit_micro_usd,
                          preemptions=preempted)

    def _preempt(self, wanted: Sequence[Any], modes: Mapping[str, DeviceMode], at: datetime
                 ) -> list[PreemptionRecord]:
        """Carry out the policy's explicit preemptions (held GPUs alone over a facility's cap)
        and record each one. A holder already told to stop is not told again; a failed attempt
        is recorded and tried again on the next step."""
        out: list[PreemptionRecord] = []
        preempt = getattr(self._port, "preempt", None)
        for p in wanted:
            st = modes.get(p.device_id)
            holder = st.held_by if st is not None else None
            told = self._preempted.get((p.device_id, holder)) if holder else None
            if not holder or (told is not None and (at - told).total_seconds() < _PREEMPT_AGAIN_S):
                continue
            ok, error = False, "this fleet cannot preempt a held GPU"
            if callable(preempt):
                try:
                    ok = bool(preempt(p.device_id, holder, p.reason))
                    error = None if ok else "no agent or router holds it any more"
                except Exception as exc:  # a failed preemption is recorded and retried
                    ok, error = False, f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:300]
            rec = PreemptionRecord(p.device_id, p.facility, holder, at, ok, p.reason, error)
            self._repo.record_preemption(rec)
            if ok:
                self._preempted[(p.device_id, holder)] = at
            log.warning("preemption of %s on %s (%s): %s", holder, p.device_id, p.reason,
                        "done" if ok else error)
            out.append(rec)
        return out

    def _issue(self, d: Any, state: DeviceMode, now: datetime) -> DecisionRecord:
        reason = getattr(d.reason, "value", str(d.reason))
        return DecisionRecord(
            decision_id=d.decision_id, tick_at=d.tick_at, issued_at=now, device_id=d.device_id,
            facility=d.facility, kind=d.kind, from_mode=d.from_mode, to_mode=d.to_mode, reason=reason,
            expected_gain_usd_per_hour=float(d.expected_gain_usd_per_hour),
            issued_generation=state.generation)

    def _apply(self, records: Sequence[DecisionRecord]) -> list[ApplyResult]:
        if not records:
            return []
        orders = [ApplyOrder(decision_id=d.decision_id, device_id=d.device_id, facility=d.facility,
                             kind=d.kind, to_mode=d.to_mode, reason=switch_reason(d.decision_id, d.reason))
                  for d in records]
        try:
            results = self._port.apply(orders, self._timeout_s)
        except Exception as exc:  # a broken port fails this step's orders; they are not re-sent
            log.exception("applying %d decisions failed", len(orders))
            return [ApplyResult(o.decision_id, False, None, error=f"port failed: {exc}") for o in orders]
        by_id = {r.decision_id: r for r in results}
        return [by_id.get(o.decision_id) or ApplyResult(o.decision_id, False, None, error="no result from port")
                for o in orders]

    def _realized(self, modes: Mapping[str, DeviceMode], now: datetime) -> dict[str, int]:
        """Per device, micro-USD earned since the previous step at the prices in effect then."""
        if self._last is None or self._last_tick is None or now <= self._last.at:
            return {}
        rates = self._profit.rates(self._last_tick)
        revenue_rates = getattr(self._profit, "revenue_rates", None)
        revenue = revenue_rates(self._last_tick) if callable(revenue_rates) else None
        changes = self._repo.mode_changes_since(self._last.at)
        return realized_profit_micro_usd(rates, {k: v.mode for k, v in modes.items()}, changes,
                                         self._last.at, now, revenue)

    # -- reconciliation -----------------------------------------------------------------
    def reconcile(self, now: datetime | None = None, modes: Mapping[str, DeviceMode] | None = None,
                  *, force: bool = False) -> list[OutcomeRecord]:
        """Settle issued decisions without outcome once the apply timeout has passed (or ``force``).

        Nothing is re-sent: the device's committed record says whether the change was made.
        """
        now = now or self._clock.now()
        pending = [d for d in self._repo.pending()
                   if force or (now - d.issued_at).total_seconds() >= self._timeout_s]
        if not pending:
            return []
        modes = modes if modes is not None else self._repo.device_modes()
        out: list[OutcomeRecord] = []
        for d in pending:
            hit = self._repo.committed_change_for(d)
            if hit is not None:
                out.append(OutcomeRecord(d.decision_id, now, OutcomeStatus.RECONCILED_APPLIED,
                                         generation=hit[0]))
                continue
            st = modes.get(d.device_id)
            where = f"{st.mode} at generation {st.generation}" if st else "unknown to the store"
            out.append(OutcomeRecord(
                d.decision_id, now, OutcomeStatus.RECONCILED_NOT_APPLIED,
                generation=st.generation if st else None,
                error=f"no committed change for this decision (device is {where}); not re-sent"))
        written = self._repo.record_outcomes(out, pending)
        for o in written:
            log.warning("reconciled %s: %s", o.decision_id, o.status.value)
        return written

    # -- read side ----------------------------------------------------------------------
    def profitability(self) -> Profitability:
        """The latest tick and every device's expected USD/hour per mode at its prices."""
        if self._last_tick is None:
            return Profitability(None, {})
        rates = self._profit.rates(self._last_tick)
        return Profitability(tick_to_dict(self._last_tick), {k: dict(v) for k, v in rates.items()})

    def hourly_rates(self) -> tuple[Mapping[str, Mapping[str, float]],
                                    Mapping[str, Mapping[str, float]]] | None:
        """(revenue, profit) in USD per device-hour and mode at the latest tick; None before
        the first tick, or where the profit model gives no revenue."""
        revenue_rates = getattr(self._profit, "revenue_rates", None)
        if self._last_tick is None or not callable(revenue_rates):
            return None
        return revenue_rates(self._last_tick), self._profit.rates(self._last_tick)

    @property
    def last_step(self) -> StepRecord | None:
        return self._last


def _outcome(r: ApplyResult, at: datetime) -> OutcomeRecord:
    if r.ok:
        status = OutcomeStatus.NOOP if r.noop else OutcomeStatus.APPLIED
    else:
        status = OutcomeStatus.TIMEOUT if r.timed_out else OutcomeStatus.FAILED
    return OutcomeRecord(decision_id=r.decision_id, at=at, status=status, latency_ms=r.latency_ms,
                         generation=r.generation, error=r.error)
