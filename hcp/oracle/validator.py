"""One validator: heartbeats in, challenges out, answers in; votes and an hourly report out.

``ValidatorNode`` puts the core's parts together for one validator identity (the validator
actor is a thin shell over it): ``HeartbeatVerifier`` and ``HeartbeatTracker`` for liveness,
``PossessionAuditor`` for challenges, ``ReportAccumulator`` for the period's measurements.
Every method returns the votes (``Observation``) it produced, for the coordinator's quorum.

It watches every provider with a registered key, from its registration on (or from its own
start, if later: time no validator watched is nobody's outage, nor expected uptime). A
restarted validator resumes from the store (``restore``): the last heartbeat kept for each
provider is where its count of missed heartbeats goes on, and a replay of an older heartbeat
stays refused. Challenges in flight when it died are lost with it: it casts no vote on that round,
and the others still reach the quorum (k of n).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from hcp.clock import Clock
from hcp.errors import StoreError
from hcp.oracle.audit import ChallengeResult, PossessionAuditor
from hcp.oracle.challenge import ChallengeAnswer, ImageTarget, PossessionChallenge
from hcp.oracle.findings import Observation
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat, HeartbeatVerifier
from hcp.oracle.identities import IdentityBook, Role, RoleRegistry
from hcp.oracle.liveness import HeartbeatTracker, Watch
from hcp.oracle.report import ReportAccumulator, SignedReport, sign_report
from hcp.oracle.repository import OracleRepository
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import Signer
from hcp.oracle.wire import from_ms, to_ms

log = logging.getLogger(__name__)


def period_start(at: datetime, settings: OracleSettings) -> datetime:
    """The start of the report period holding ``at`` (periods are aligned to the epoch, so
    every validator's hour is the same hour)."""
    p = settings.report_period_seconds * 1000
    return from_ms(to_ms(at) // p * p)


@dataclass
class Tick:
    votes: list[Observation] = field(default_factory=list)
    results: list[ChallengeResult] = field(default_factory=list)  # verdicts since the last tick
    missed: int = 0  # heartbeats that became missed since the last tick, over all providers
    report: SignedReport | None = None


class ValidatorNode:
    def __init__(self, signer: Signer, identities: IdentityBook, repo: OracleRepository,
                 settings: OracleSettings, clock: Clock) -> None:
        self.signer = signer
        self.identities = identities
        self.repo = repo
        self.settings = settings
        self.clock = clock
        providers = RoleRegistry(identities, Role.PROVIDER)
        self.verifier = HeartbeatVerifier(providers, settings, clock)
        self.tracker = HeartbeatTracker(signer.identity, settings, clock)
        self.auditor = PossessionAuditor(signer, providers, settings, clock)
        self.acc = ReportAccumulator(signer.identity, period_start(clock.now(), settings), settings)
        self.started_at = clock.now()
        self._unsaved: list[AcceptedHeartbeat] = []
        self._results: list[ChallengeResult] = []
        self._missed: dict[str, int] = {}  # missed heartbeats in a row, as last counted

    @property
    def validator_id(self) -> str:
        return self.signer.identity

    # -- lifecycle ------------------------------------------------------------------------
    def restore(self) -> None:
        """Resume from the store: the last kept heartbeat of every provider."""
        last = self.repo.last_heartbeats()
        self.verifier.restore({pid: seq for pid, (seq, _) in last.items()})
        for pid, rec in self.identities.members(Role.PROVIDER).items():
            if pid in last:
                seq, at = last[pid]
                # Counted from this start at the earliest: while no validator ran, no
                # heartbeat could be received, and that is not the provider's outage.
                self.tracker.restore(pid, Watch(to_ms(rec.registered_at),
                                                max(at, self.started_at), seq))
        self.sync()

    def sync(self) -> None:
        """Watch every registered provider (a new one from its registration time; one whose
        key was revoked is no longer expected)."""
        members = self.identities.members(Role.PROVIDER)
        for pid in self.tracker.watched() - set(members):
            self.tracker.forget(pid)
        for pid, rec in members.items():
            w = self.tracker.watch(pid)
            if w is None:
                # Outages are named by the registration (the same for every validator) but
                # counted from this validator's start at the earliest.
                w = Watch(to_ms(rec.registered_at), max(rec.registered_at, self.started_at), None)
                self.tracker.restore(pid, w)
            self.acc.expect(pid, max(rec.registered_at, self.started_at),
                            w.last_at if w.last_seq is not None else None)

    # -- messages -------------------------------------------------------------------------
    def heartbeat(self, hb: Heartbeat) -> list[Observation]:
        """A heartbeat from an agent: verified (or refused, typed), counted, kept."""
        accepted = self.verifier.verify(hb)
        self._missed.pop(hb.provider_id, None)
        self._unsaved.append(accepted)
        self.acc.add_heartbeat(accepted)
        return self._observed(self.tracker.record(accepted))

    def challenge(self, provider_id: str, targets: list[ImageTarget], round_id: str,
                  round_seed: bytes) -> PossessionChallenge:
        return self.auditor.challenge(provider_id, targets, round_id, round_seed)

    def pending_for(self, provider_id: str) -> list[PossessionChallenge]:
        return [c for c in self.auditor.pending() if c.provider_id == provider_id]

    def submit(self, answer: ChallengeAnswer) -> list[Observation]:
        """An agent's answer: the verdict's vote (a refused answer raises, changing nothing)."""
        return self._result(self.auditor.submit(answer))

    def _result(self, r: ChallengeResult) -> list[Observation]:
        self._results.append(r)
        self.acc.add_result(r)
        obs = r.observation()
        return self._observed([obs] if obs is not None else [])

    def _observed(self, votes: list[Observation]) -> list[Observation]:
        for v in votes:
            self.acc.add_observation(v)
        return votes

    # -- time -----------------------------------------------------------------------------
    def tick(self) -> Tick:
        """Due votes (missed heartbeats past the limit, expired challenges), the kept
        messages flushed, and the signed report once its period has ended."""
        self.sync()
        out = Tick(self._observed(self.tracker.tick()))
        now = self.clock.now()
        for pid in self.tracker.watched():
            n = self.tracker.missed(pid, now)
            if n > self._missed.get(pid, 0):
                out.missed += n - self._missed.get(pid, 0)
                self._missed[pid] = n
        for r in self.auditor.expire():
            out.votes.extend(self._result(r))
        out.results = list(self._results)
        self.flush()
        if self.clock.now() >= self.acc.period_end:
            out.report = self._close_period()
        return out

    def flush(self) -> None:
        """Keep the accepted heartbeats and the verdicts for disputes (batched per tick: a
        validator takes thousands of heartbeats a minute). A store that is down keeps them
        buffered for the next tick."""
        hbs, results = self._unsaved, self._results
        try:
            if hbs:
                self.repo.record_heartbeats(hbs)
            if results:
                self.repo.record_results(results)
        except StoreError:
            log.warning("validator %s could not keep %d heartbeats and %d verdicts; retrying",
                        self.validator_id, len(hbs), len(results))
            return
        self._unsaved, self._results = [], []

    def _close_period(self) -> SignedReport:
        signed = sign_report(self.acc.build(), self.signer)
        end = self.acc.period_end
        self.acc = ReportAccumulator(self.validator_id, end, self.settings)
        self.sync()  # every provider is due from the new period's start
        return signed
