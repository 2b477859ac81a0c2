"""The provider agent's side of the oracle: a signed heartbeat every minute and an answer to
every possession challenge, from the agent's own block store.

``OracleLink`` runs in its own thread beside the agent's loop (a slow Docker call must not
make a live provider look dead). It registers the provider's key first (its key file lives
under ``HCP_HOME/oracle``; the key survives restarts, so the identity does), then sends a
heartbeat every ``heartbeat_interval_seconds`` and polls its mailbox every
``challenge_poll_seconds``. A challenge is answered only when a validator of the set signed
it, for this provider, before its expiry (``answer_challenge``); a warning that possession
failed makes the agent repair its images (fetch what its store lacks, by CID, verified)
before the re-check a minute later.

The port is the platform: the validator actors in process (``actors.validator.RayOracle``)
or the platform's HTTP API for a third-party provider (``hcp.agent.http_ports.HttpOracle``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from hcp.clock import Clock
from hcp.errors import HcpError
from hcp.images.exporter import BlockGetter
from hcp.oracle.challenge import ChallengeAnswer, PossessionChallenge, answer_challenge
from hcp.oracle.escalation import Warning
from hcp.oracle.findings import Outcome
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import KeyRing, Signer, Verifier
from hcp.oracle.wire import to_ms

log = logging.getLogger(__name__)

_ANSWERED_KEPT = 4096


@dataclass(frozen=True)
class Mailbox:
    challenges: tuple[PossessionChallenge, ...] = ()
    warnings: tuple[Warning, ...] = ()


class OraclePort(Protocol):
    def register(self, provider_id: str, public_key: bytes) -> None:
        """Bind the provider to this key (a rotation if it had another)."""

    def validators(self) -> dict[str, bytes]:
        """The validator set's public keys (challenges are checked against them)."""

    def heartbeat(self, hb: Heartbeat) -> int:
        """Send a heartbeat to every validator; how many accepted it."""

    def mailbox(self, provider_id: str) -> Mailbox:
        """Challenges in flight for this provider, and warnings not yet delivered."""

    def answer(self, answer: ChallengeAnswer, validator_id: str) -> None:
        """Deliver an answer to the validator that issued its challenge."""


@dataclass
class LinkReport:
    heartbeats: int = 0
    accepted_by: int = 0
    answered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # challenges not answered, and why
    warnings: list[Warning] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# What the agent runs now: (job ids, per-GPU utilisation in basis points).
Activity = Callable[[], tuple[list[str], list[int]]]


class OracleLink:
    def __init__(self, signer: Signer, port: OraclePort, blocks: BlockGetter,
                 settings: OracleSettings, clock: Clock, activity: Activity | None = None,
                 repair: Callable[[], int] | None = None) -> None:
        self.signer, self.port, self.blocks = signer, port, blocks
        self.settings, self.clock = settings, clock
        self.activity = activity or (lambda: ([], []))
        self.repair = repair
        self.started_at = clock.now()
        self.validators = Verifier(KeyRing())
        self._registered = False
        self._next_heartbeat: datetime | None = None
        self._next_register: datetime | None = None
        self._next_poll: datetime | None = None
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._seq = 0

    @property
    def provider_id(self) -> str:
        return self.signer.identity

    def run(self, stop: threading.Event, wake_seconds: float = 0.5) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 -- the link must outlive any one failure
                log.exception("oracle link step failed")
            stop.wait(wake_seconds)

    def step(self, force: bool = False) -> LinkReport:
        """Whatever is due now: registration, a heartbeat, the mailbox."""
        report = LinkReport()
        now = self.clock.now()
        if not self._registered:
            if self._next_register is not None and now < self._next_register and not force:
                return report
            if not self._attempt(report, self._register):
                # A platform without validators (or down): ask again in a heartbeat period,
                # not every wake.
                self._next_register = now + timedelta(
                    seconds=self.settings.heartbeat_interval_seconds)
                return report  # nothing counts before the key is registered
        if force or self._next_heartbeat is None or now >= self._next_heartbeat:
            self._attempt(report, lambda: self._beat(now, report))
        if force or self._next_poll is None or now >= self._next_poll:
            self._next_poll = now + timedelta(seconds=self.settings.challenge_poll_seconds)
            self._attempt(report, lambda: self._poll(report))
        return report

    @staticmethod
    def _attempt(report: LinkReport, part: Callable[[], None]) -> bool:
        # Each part on its own: a refused heartbeat must not keep a challenge unanswered.
        try:
            part()
        except HcpError as exc:
            report.errors.append(exc.code)
            log.warning("oracle link: %s: %s", exc.code, exc.detail)
            return False
        return True

    def _register(self) -> None:
        self.port.register(self.provider_id, self.signer.public_key)
        self._load_validators()
        self._registered = True

    def _beat(self, now: datetime, report: LinkReport) -> None:
        # Next one a full interval on even if this one fails: a retry storm helps nobody,
        # and one miss is within the tolerance.
        self._next_heartbeat = now + timedelta(seconds=self.settings.heartbeat_interval_seconds)
        jobs, util = self.activity()
        uptime = int((now - self.started_at).total_seconds())
        # seq: the sending time in ms, which grows across restarts without a kept counter.
        self._seq = max(to_ms(now), self._seq + 1)
        hb = Heartbeat.signed(self.signer, self._seq, now, tuple(jobs), tuple(util), uptime)
        report.accepted_by = self.port.heartbeat(hb)
        report.heartbeats += 1

    def _load_validators(self) -> None:
        ring = KeyRing(self.port.validators())
        self.validators = Verifier(ring)

    def _poll(self, report: LinkReport) -> None:
        box = self.port.mailbox(self.provider_id)
        if any(not self.validators.known(c.validator_id) for c in box.challenges):
            self._load_validators()  # a validator joined (or rotated) since
        for c in box.challenges:
            if c.challenge_id in self._answered:
                continue
            try:
                a = answer_challenge(c, self.blocks, self.signer, self.clock.now(), self.validators)
            except HcpError as exc:  # forged, misaddressed or expired: no work, no signature
                report.refused.append(f"{c.challenge_id}: {exc.code}")
                self._remember(c.challenge_id)
                continue
            try:
                self.port.answer(a, c.validator_id)
            except HcpError as exc:
                report.refused.append(f"{c.challenge_id}: {exc.code}")
            self._remember(c.challenge_id)
            report.answered.append(c.challenge_id)
        report.warnings.extend(box.warnings)
        if self.repair is not None and any(w.outcome is Outcome.DATA_FRAUD
                                           for w in box.warnings):
            try:
                n = self.repair()
                log.warning("possession failed a check: %d images repaired from peers", n)
            except HcpError as exc:
                report.errors.append(exc.code)
                log.warning("image repair failed: %s: %s", exc.code, exc.detail)

    def _remember(self, challenge_id: str) -> None:
        self._answered[challenge_id] = None
        while len(self._answered) > _ANSWERED_KEPT:
            self._answered.popitem(last=False)
