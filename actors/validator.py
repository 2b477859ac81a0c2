"""The oracle's actors: n validators and their coordinator, thin shells over
``hcp.oracle.validator.ValidatorNode`` and ``hcp.oracle.coordinator.OracleCoordinator``.

Each validator has its own Ed25519 key (``HCP_HOME/oracle/<id>.key``, registered at start)
and judges alone: it verifies heartbeats and answers itself and votes. The coordinator
counts the votes (k of n), applies what a quorum confirms exactly once, and starts each
provider's possession rounds. Both are restarted by Ray after a crash and resume from the
store. ``RayOracle`` is how an agent (``hcp.agent.oracle.OraclePort``) and the API's routes
reach them; every call goes through ``actors.handles.get`` (typed errors, never a Ray one).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import ray
from ray.exceptions import RaySystemError

from actors.handles import get
from actors.options import (
    coordinator_actor_name,
    coordinator_actor_options,
    validator_actor_name,
    validator_actor_options,
)
from hcp.config import Settings
from hcp.errors import (
    DeviceUnavailableError,
    HcpError,
    OracleSignatureError,
    UnknownValidatorError,
)
from hcp.logging_setup import configure_for
from hcp.observability.validators import record_decisions, record_heartbeat, record_results
from hcp.oracle.challenge import ChallengeAnswer, ImageTarget, PossessionChallenge
from hcp.oracle.coordinator import Round
from hcp.oracle.disputes import EvidenceCollector
from hcp.oracle.escalation import Warning
from hcp.oracle.findings import Observation
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.identities import IdentityBook, Role
from hcp.oracle.outbox import VoteOutbox

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0


def _recorded(record: Any) -> None:
    try:
        record()
    except Exception:  # noqa: BLE001 -- metrics never fail a validator
        log.exception("oracle metrics failed")


def platform_blocks(settings: Settings, engine: Any) -> Any:
    """``get_block`` of the platform's own image store (read only: the integrity of a
    disputed job's image, every block verified)."""
    from hcp.images.store.embedded import EmbeddedStore

    s = settings.images
    store = EmbeddedStore(settings.home / "images" / s.store_name, engine, s.cap_bytes)
    return store.get_block


def validator_ids(settings: Settings) -> list[str]:
    return [f"val-{i}" for i in range(settings.oracle.validators)]


def _store(settings: Settings) -> tuple[Any, Any]:
    from hcp.clock import SystemClock
    from hcp.store.db import engine_for

    return engine_for(settings.resolved_database_url), SystemClock()


def _loop(stop: threading.Event, period: float, step: Any, what: str) -> threading.Thread:
    def run() -> None:
        while not stop.wait(period):
            try:
                step()
            except HcpError as exc:
                log.warning("%s: %s: %s", what, exc.code, exc.detail)
            except Exception:  # noqa: BLE001 -- the loop outlives any one failure
                log.exception("%s failed", what)

    t = threading.Thread(target=run, name=what, daemon=True)
    t.start()
    return t


@ray.remote
class ValidatorActor:
    def __init__(self, settings: Settings, identity: str, coordinator: Any) -> None:
        from hcp.oracle.keyfile import load_or_create_signer
        from hcp.oracle.repository import OracleRepository
        from hcp.oracle.validator import ValidatorNode

        configure_for(settings)
        engine, clock = _store(settings)
        signer = load_or_create_signer(settings.home / "oracle" / f"{identity}.key", identity)
        book = IdentityBook(engine, clock)
        book.register(identity, Role.VALIDATOR, signer.public_key)
        self._repo = OracleRepository(engine, clock)
        self._node = ValidatorNode(signer, book, self._repo, settings.oracle, clock)
        self._outbox = VoteOutbox(self._repo.record_observations,
                                  lambda votes: self._coordinator.observe.remote(votes))
        self._evidence = EvidenceCollector(engine, self._repo, platform_blocks(settings, engine))
        self._node.restore()
        self._coordinator = coordinator
        from actors.metrics_sink import RaySink

        self._sink = RaySink()  # the catalogue's validator series, through Ray's metrics agent
        self._lock = threading.Lock()  # the node is one-caller-at-a-time; the tick is a thread
        self._stop = threading.Event()
        self._thread = _loop(self._stop, settings.oracle.tick_seconds, self.tick,
                             f"validator {identity}")

    def _vote(self, votes: list[Observation]) -> None:
        self._outbox.send(votes)

    def tick(self) -> int:
        with self._lock:
            t = self._node.tick()
        if t.report is not None:
            self._repo.save_report(t.report)
        self._vote(t.votes)
        vid = self._node.validator_id
        _recorded(lambda: (record_heartbeat(self._sink, vid, "missed", t.missed),
                           record_results(self._sink, vid, t.results)))
        return len(t.votes)

    def heartbeat(self, hb: Heartbeat) -> None:
        """Verify and count one heartbeat; a refusal is raised, typed."""
        vid = self._node.validator_id
        try:
            with self._lock:
                votes = self._node.heartbeat(hb)
        except OracleSignatureError:
            _recorded(lambda: record_heartbeat(self._sink, vid, "bad_signature"))
            raise
        _recorded(lambda: record_heartbeat(self._sink, vid, "ok"))
        self._vote(votes)

    def challenge(self, round_: Round, targets: list[ImageTarget]) -> PossessionChallenge:
        with self._lock:
            return self._node.challenge(round_.provider_id, targets, round_.round_id, round_.seed)

    def pending_for(self, provider_id: str) -> list[PossessionChallenge]:
        with self._lock:
            return self._node.pending_for(provider_id)

    def submit(self, answer: ChallengeAnswer) -> None:
        with self._lock:
            votes = self._node.submit(answer)
        self._vote(votes)

    def sign_evidence(self, job_id: str, sha256: str) -> tuple[str, bytes] | None:
        """This validator's signature over a dispute's bundle, if its own rebuild matches."""
        sig = self._evidence.sign_if_same(job_id, sha256, self._node.signer)
        return None if sig is None else (self._node.validator_id, sig)

    def identity(self) -> str:
        return self._node.validator_id

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            self._node.flush()


@ray.remote
class CoordinatorActor:
    def __init__(self, settings: Settings) -> None:
        from actors.escrow import RemoteEscrow
        from hcp.marketplace.reputation_book import ReputationBook
        from hcp.oracle.apply import reputation_penalty, reputation_uptime
        from hcp.oracle.coordinator import OracleCoordinator
        from hcp.oracle.repository import OracleRepository
        from hcp.oracle.targets import RunningJobTargets

        configure_for(settings)
        engine, clock = _store(settings)
        book = ReputationBook(settings.marketplace.response_max_seconds, clock)
        self._settings = settings
        self._core = OracleCoordinator(
            validator_ids(settings), IdentityBook(engine, clock), OracleRepository(engine, clock),
            settings.oracle, clock, reputation_penalty(book), reputation_uptime(book),
            stake=RemoteEscrow(settings))
        self._targets = RunningJobTargets(engine)
        self._evidence = EvidenceCollector(engine, self._core.repo, platform_blocks(settings, engine))
        self._validators: dict[str, Any] = {}
        from actors.metrics_sink import RaySink

        self._sink = RaySink()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._restored = False
        self._thread = _loop(self._stop, settings.oracle.tick_seconds, self.tick, "oracle coordinator")

    def attach(self, validators: dict[str, Any]) -> None:
        """The validator actors' handles (they take this actor's handle at their start)."""
        self._validators = dict(validators)

    def observe(self, votes: list[Observation]) -> int:
        with self._lock:
            self._restore()
            decisions = self._core.observe(votes)
        _recorded(lambda: record_decisions(self._sink, decisions))
        return len(decisions)

    def _restore(self) -> None:
        if not self._restored:
            self._core.restore()  # the store, not Ray: safe to do at the first call
            self._restored = True

    def tick(self) -> int:
        with self._lock:
            self._restore()
            decisions = self._core.tick()
            rounds = self._core.due_rounds()
        _recorded(lambda: record_decisions(self._sink, decisions))
        decided = len(decisions)
        for r in rounds:
            self._start_round(r)
        self._collect_evidence()
        return decided

    def _collect_evidence(self) -> None:
        """Bundles for disputes opened a few ticks ago (every heartbeat received before the
        dispute is kept by then), signed by every validator whose own rebuild matches."""
        from hcp.clock import utcnow
        from hcp.oracle.disputes import keep
        from hcp.oracle.evidence import SignedBundle

        settle = timedelta(seconds=max(2.0, 3 * self._settings.oracle.tick_seconds))
        for d in self._evidence.owed(utcnow() - settle):
            bundle = self._evidence.build(d)
            refs = [v.sign_evidence.remote(d.job_id, bundle.sha256)
                    for v in self._validators.values()]
            sigs = []
            for ref in refs:
                try:
                    got = get(ref, "validator", CALL_TIMEOUT_S)
                except HcpError as exc:
                    log.warning("evidence of %s: a validator did not sign: %s", d.job_id, exc.code)
                    continue
                if got is not None:
                    sigs.append(got)
            signed = SignedBundle(bundle, tuple(sorted(sigs)))
            if keep(self._core.repo, signed, self._settings.oracle.quorum):
                log.info("evidence of dispute %s kept: %s, %d signatures", d.dispute_id,
                         bundle.sha256, len(sigs))

    def _start_round(self, r: Round) -> None:
        targets = self._targets.targets(r.provider_id)
        if not targets or not self._validators:
            return  # it holds nothing to challenge now (no running job)
        refs = [v.challenge.remote(r, targets) for v in self._validators.values()]
        issued = 0
        for ref in refs:
            try:
                get(ref, "validator", CALL_TIMEOUT_S)
                issued += 1
            except HcpError as exc:
                log.warning("round %s for %s: a validator did not challenge: %s", r.round_id,
                            r.provider_id, exc.code)
        log.info("possession round %s for %s: %d challenges", r.round_id, r.provider_id, issued)

    def warnings_for(self, provider_id: str) -> list[Warning]:
        with self._lock:
            return self._core.warnings_for(provider_id)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# -- launch, find, stop ---------------------------------------------------------------------

def launch_oracle(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """Start (or find) the coordinator and the validators; returns once all are up."""
    coordinator = CoordinatorActor.options(**coordinator_actor_options(settings)).remote(settings)
    validators = {vid: ValidatorActor.options(**validator_actor_options(settings, vid)).remote(
        settings, vid, coordinator) for vid in validator_ids(settings)}
    timeout = settings.ray.start_timeout_seconds
    ray.get([v.identity.remote() for v in validators.values()], timeout=timeout)
    ray.get(coordinator.attach.remote(validators), timeout=timeout)
    return coordinator, validators


def stop_oracle(coordinator: Any, validators: dict[str, Any]) -> None:
    for h in [*validators.values(), coordinator]:
        try:
            ray.get(h.shutdown.remote(), timeout=30)
        except Exception:  # stopping anyway
            log.debug("oracle actor did not stop cleanly", exc_info=True)
        ray.kill(h, no_restart=True)


class RayOracle:
    """``hcp.agent.oracle.OraclePort`` over the actors (found by name, again after a restart)."""

    def __init__(self, settings: Settings, identities: IdentityBook,
                 timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._settings = settings
        self._identities = identities
        self._timeout = timeout_s
        self._handles: dict[str, Any] = {}

    def _actor(self, name: str) -> Any:
        h = self._handles.get(name)
        if h is None:
            try:
                h = ray.get_actor(name, namespace=self._settings.ray.namespace)
            except (ValueError, RaySystemError):  # not started, or no Ray in this process
                raise DeviceUnavailableError("the oracle's validators are not running",
                                             actor=name) from None
            self._handles[name] = h
        return h

    def _call(self, name: str, method: str, *args: Any) -> Any:
        try:
            return get(getattr(self._actor(name), method).remote(*args), "oracle", self._timeout)
        except DeviceUnavailableError:
            self._handles.pop(name, None)
            raise

    def register(self, provider_id: str, public_key: bytes) -> None:
        self._identities.register(provider_id, Role.PROVIDER, public_key)

    def validators(self) -> dict[str, bytes]:
        return {i: r.public_key for i, r in self._identities.members(Role.VALIDATOR).items()}

    def heartbeat(self, hb: Heartbeat) -> int:
        """Sent to every validator; the count that accepted. When none did, the first
        refusal is raised (a bad signature is refused by all alike)."""
        names = [validator_actor_name(v) for v in validator_ids(self._settings)]
        refs, errors = [], []
        for n in names:
            try:
                refs.append((n, self._actor(n).heartbeat.remote(hb)))
            except HcpError as exc:
                errors.append(exc)
        accepted = 0
        for n, ref in refs:
            try:
                get(ref, "validator", self._timeout)
                accepted += 1
            except HcpError as exc:
                if isinstance(exc, DeviceUnavailableError):
                    self._handles.pop(n, None)
                errors.append(exc)
        if not accepted and errors:
            raise errors[0]
        return accepted

    def mailbox(self, provider_id: str) -> Any:
        from hcp.agent.oracle import Mailbox

        challenges: list[PossessionChallenge] = []
        for v in validator_ids(self._settings):
            try:
                challenges.extend(self._call(validator_actor_name(v), "pending_for", provider_id))
            except DeviceUnavailableError:
                continue  # that validator is restarting: the others' challenges still count
        try:
            warnings = self._call(coordinator_actor_name(), "warnings_for", provider_id)
        except DeviceUnavailableError:
            warnings = []  # restarting: its warnings wait for the next poll
        return Mailbox(tuple(challenges), tuple(warnings))

    def answer(self, answer: ChallengeAnswer, validator_id: str) -> None:
        if validator_id not in validator_ids(self._settings):
            raise UnknownValidatorError("no such validator in the set", validator=validator_id)
        self._call(validator_actor_name(validator_id), "submit", answer)
