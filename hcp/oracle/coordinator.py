"""The validators' coordinator: votes in, decisions out, each applied once.

It holds the quorum book (a finding needs k of n validators), steps each finding through the
escalation policy and commits it with its effects (reputation points in the same
transaction; a stake slash through the ledger, by the penalty's id). It also decides when a
provider's possession round starts (at random times, sooner while it is suspect) with a seed
every validator of the round shares, and settles each report period: the validators' signed
reports are verified, combined (``consensus``) and their agreed uptime reaches reputation
once per provider and period.

The coordinator judges nothing itself: it counts votes. A coordinator killed mid-round
resumes from the store (``restore``): the votes without a finding go back in the book (a
quorum reached just before it died is decided then), and a finding already committed
commits nothing again, so no penalty is applied twice.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from hcp.clock import Clock
from hcp.errors import (
    EquivocationError,
    HcpError,
    IdempotencyConflictError,
    StandingConflictError,
    UnknownValidatorError,
)
from hcp.marketplace.escrow_backend import Slash, StakeState
from hcp.oracle.challenge import ImageTarget
from hcp.oracle.escalation import Decision, EscalationPolicy, ProviderState, Warning
from hcp.oracle.findings import Finding, Observation
from hcp.oracle.identities import IdentityBook, Role, RoleRegistry
from hcp.oracle.quorum import QuorumBook
from hcp.oracle.report import consensus, report_findings, verify_report
from hcp.oracle.repository import AgreedEffect, OracleRepository, PenaltyEffect
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import Verifier
from hcp.oracle.validator import period_start
from hcp.oracle.wire import to_ms

log = logging.getLogger(__name__)

BPS = 10_000
_WARNINGS_KEPT = 16


class StakePort(Protocol):
    """The ledger's stake (``EscrowBackend``): a slash is idempotent by its op id."""

    def stake_of(self, provider: str) -> StakeState: ...

    def slash(self, provider: str, amount: int, op_id: str, job_id: str | None = None) -> Slash: ...


class TargetSource(Protocol):
    def targets(self, provider_id: str) -> list[ImageTarget]:
        """The files a provider must hold now (its pinned and running images)."""


@dataclass(frozen=True, slots=True)
class Round:
    """One possession round of one provider: every validator challenges it with this id and
    seed (so all ask for the same bytes, each with its own nonce)."""

    provider_id: str
    round_id: str
    seed: bytes


class OracleCoordinator:
    def __init__(self, validator_ids: Iterable[str], identities: IdentityBook,
                 repo: OracleRepository, settings: OracleSettings, clock: Clock,
                 penalty_effect: PenaltyEffect | None = None,
                 uptime_effect: AgreedEffect | None = None, stake: StakePort | None = None,
                 rng: random.Random | None = None) -> None:
        self.validator_ids = tuple(sorted(validator_ids))
        self.identities = identities
        self.repo = repo
        self.settings = settings
        self.clock = clock
        self.penalty_effect, self.uptime_effect, self.stake = penalty_effect, uptime_effect, stake
        self.rng = rng or random.SystemRandom()
        self.book = QuorumBook(self.validator_ids, settings.quorum, settings.vote_window_seconds,
                               clock)
        self.policy = EscalationPolicy(settings)
        self.report_verifier = Verifier(RoleRegistry(identities, Role.VALIDATOR))
        self._next_round: dict[str, datetime] = {}
        self._warnings: dict[str, list[Warning]] = {}
        self._settled: set[datetime] = set()

    # -- lifecycle ------------------------------------------------------------------------
    def restore(self) -> list[Decision]:
        """Put the votes that have no finding yet back in the book (decisions a crash left
        owed are taken now), send the slashes not yet confirmed, and hold again the warnings
        that the standings of providers not healthy still carry."""
        for state in (ProviderState.SUSPECT, ProviderState.DOWN):
            for st in self.repo.standings(state).values():
                if warnings := self.policy.open_warnings(st):
                    self._warnings[st.provider_id] = warnings[-_WARNINGS_KEPT:]
        since = self.clock.now() - timedelta(seconds=self.settings.vote_window_seconds)
        found = []
        for o in self.repo.open_observations(since):
            try:
                f = self.book.add(o)
            except (EquivocationError, UnknownValidatorError):
                continue  # refused when it came, refused again
            if f is not None:
                found.append(f)
        out = self._decide(found)
        self.apply_slashes()
        return out

    # -- votes ----------------------------------------------------------------------------
    def observe(self, votes: Iterable[Observation]) -> list[Decision]:
        """Record the votes, then decide the subjects they bring to a quorum. A vote from
        outside the set, or a changed vote, is refused alone (the others count)."""
        votes = [v for v in votes if v.validator_id in self.book.validators]
        if not votes:
            return []
        self.repo.record_observations(votes)
        found = []
        for v in votes:
            try:
                f = self.book.add(v)
            except EquivocationError as exc:
                log.warning("validator %s changed its vote on %s: refused (%s)",
                            v.validator_id, v.subject, exc.detail)
                continue
            if f is not None:
                found.append(f)
        return self._decide(found)

    def _decide(self, findings: Iterable[Finding]) -> list[Decision]:
        out = []
        for f in findings:
            d = self._commit(f)
            if d is None:
                continue
            out.append(d)
            for w in d.warnings:
                kept = self._warnings.setdefault(w.provider_id, [])
                kept.append(w)
                del kept[:-_WARNINGS_KEPT]
                log.warning("provider %s warned: %s confirmed (%d of %d strikes)",
                            w.provider_id, w.outcome.value, w.strikes, w.strikes_to_penalty)
            if d.changed_state:
                log.warning("provider %s is %s", f.provider_id, d.after.state.value)
                self._next_round.pop(f.provider_id, None)  # rescheduled for its new state
            for p in d.penalties:
                log.warning("provider %s penalised: %s, -%d points%s", p.provider_id,
                            p.reason.value, p.points,
                            f", {p.slash_bps / 100:g} % of its stake" if p.slash_bps else "")
        if any(p.slash_bps for d in out for p in d.penalties):
            self.apply_slashes()
        return out

    def _commit(self, f: Finding) -> Decision | None:
        for _ in range(5):
            st = self.repo.standing(f.provider_id) or self.policy.initial(f.provider_id,
                                                                          self.clock.now())
            d = self.policy.step(st, f)
            try:
                applied = self.repo.commit_decision(d, self.penalty_effect)
            except StandingConflictError:
                continue  # another writer stepped this provider: read it again
            if d.penalties and not applied:
                # Committed before (a retry, a restarted coordinator): nothing applied now.
                return replace(d, penalties=(), warnings=(), duplicate=True)
            return d
        log.error("finding %s for %s not committed: its standing kept changing",
                  f.finding_id, f.provider_id)
        return None

    def warnings_for(self, provider_id: str) -> list[Warning]:
        """The warnings to deliver to a provider's agent (each once)."""
        return self._warnings.pop(provider_id, [])

    def apply_slashes(self) -> int:
        """Send each confirmed slash to the ledger by its penalty id, then mark it applied;
        one the ledger already took (a retry after a crash) is marked too. Returns how many
        were confirmed now."""
        if self.stake is None:
            return 0
        done = 0
        for p in self.repo.penalties(pending_only=True):
            if not p.slash_bps:
                continue
            try:
                amount = self.stake.stake_of(p.provider_id).bonded * p.slash_bps // BPS
                if amount > 0:
                    self.stake.slash(p.provider_id, amount, p.penalty_id)
            except IdempotencyConflictError:
                pass  # slashed before, from a larger stake: it is done
            except HcpError as exc:
                log.warning("slash %s of %s not applied yet: %s", p.penalty_id, p.provider_id,
                            exc.code)
                continue
            done += self.repo.mark_applied(p.penalty_id)
        return done

    # -- time -----------------------------------------------------------------------------
    def tick(self) -> list[Decision]:
        """Close the subjects whose window passed without a quorum, settle ended periods."""
        out = self._decide(self.book.close_expired())
        out.extend(self.settle_periods())
        return out

    def due_rounds(self) -> list[Round]:
        """The providers whose possession round is due now (a DOWN one is not challenged)."""
        now = self.clock.now()
        standings = self.repo.standings()
        out = []
        for pid in sorted(self.identities.members(Role.PROVIDER)):
            st = standings.get(pid)
            mean = self.policy.challenge_interval_seconds(
                st.state if st is not None else self.policy.initial(pid, now).state)
            if mean is None:
                self._next_round.pop(pid, None)
                continue
            at = self._next_round.get(pid)
            if at is None:
                # Half the mean at least (a warned agent gets time to repair before the
                # re-check), then an exponential wait: it cannot tell when the next one comes.
                gap = mean / 2 - math.log(1.0 - self.rng.random()) * mean / 2
                self._next_round[pid] = now + timedelta(seconds=min(gap, 4 * mean))
                continue
            if now >= at:
                del self._next_round[pid]
                out.append(Round(pid, f"{to_ms(now)}-{secrets.token_hex(4)}",
                                 secrets.token_bytes(32)))
        return out

    def settle_periods(self) -> list[Decision]:
        """The last ended period, once every validator reported on it (or a vote window
        after its end with at least k): agreed uptime to reputation, clean hours as passes."""
        now = self.clock.now()
        period = timedelta(seconds=self.settings.report_period_seconds)
        start = period_start(now, self.settings) - period
        if start in self._settled:
            return []
        signed = self.repo.reports(start)
        late = now >= start + period + timedelta(seconds=self.settings.vote_window_seconds)
        if len(signed) < len(self.validator_ids) and not late:
            return []
        reports = []
        for r in signed:
            if r.report.validator_id not in self.validator_ids:
                continue
            try:
                reports.append(verify_report(r, self.report_verifier))
            except HcpError as exc:
                log.warning("report of %s for %s refused: %s", r.report.validator_id, start,
                            exc.code)
        self._settled.add(start)
        if not reports:
            log.info("period %s: no reports (the validators did not run then)", start)
            return []
        if len(reports) < self.settings.quorum:
            log.warning("period %s: %d verified reports, fewer than the quorum of %d; "
                        "no uptime recorded", start, len(reports), self.settings.quorum)
            return []
        agreed = consensus(reports, self.settings.quorum)
        for a in agreed:
            self.repo.commit_agreed(a, self.uptime_effect)
        return self._decide(report_findings(agreed))
