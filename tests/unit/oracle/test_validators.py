"""The validators as the platform runs them, without Ray: three ``ValidatorNode``s and the
``OracleCoordinator`` on one store, an agent's ``OracleLink`` sending heartbeats and answering
challenges from its own block store, the SQL ledger holding the provider's stake. What the
actor shells do (a vote is kept, then counted) is what ``Cluster`` does here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hcp.agent.oracle import Mailbox, OracleLink
from hcp.errors import (
    AnswerReplayedError,
    ConfigError,
    HeartbeatReplayError,
    IdentityConflictError,
)
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from hcp.marketplace import models as mk
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.reputation_book import ReputationBook
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.oracle.apply import reputation_penalty, reputation_uptime
from hcp.oracle.challenge import (
    ChallengeAnswer,
    ImageTarget,
    build_challenge,
)
from hcp.oracle.coordinator import OracleCoordinator
from hcp.oracle.disputes import EvidenceCollector
from hcp.oracle.escalation import PenaltyReason, ProviderState
from hcp.oracle.findings import Check, Observation, Outcome, downtime_subject
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.identities import IdentityBook, Role
from hcp.oracle.keyfile import load_or_create_signer
from hcp.oracle.repository import OracleRepository
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import Signer
from hcp.oracle.validator import ValidatorNode
from tests.unit.images.conftest import ManualClock

STAKE = 1_000 * ONE_TOKEN


@dataclass
class Cluster:
    clock: ManualClock
    settings: OracleSettings
    identities: IdentityBook
    repo: OracleRepository
    nodes: list[ValidatorNode]
    coordinator: OracleCoordinator
    ledger: SqlEscrowBackend
    targets: dict[str, list[ImageTarget]] = field(default_factory=dict)
    offline: set[str] = field(default_factory=set)  # validators that do not answer

    def vote(self, votes: list[Observation]) -> None:
        if votes:
            self.repo.record_observations(votes)
            self.coordinator.observe(votes)

    def tick(self) -> None:
        for n in self.nodes:
            t = n.tick()
            if t.report is not None:
                self.repo.save_report(t.report)
            self.vote(t.votes)
        self.coordinator.tick()

    def start_rounds(self) -> int:
        started = 0
        for r in self.coordinator.due_rounds():
            for n in self.nodes:
                if n.validator_id not in self.offline and self.targets.get(r.provider_id):
                    n.challenge(r.provider_id, self.targets[r.provider_id], r.round_id, r.seed)
            started += 1
        return started

    def force_round(self, provider: str) -> None:
        """Advance until the provider's next round starts (its time is random)."""
        for _ in range(400):
            if self.start_rounds():
                return
            self.clock.advance(seconds=5)
        raise AssertionError("no round started")

    def node(self, vid: str) -> ValidatorNode:
        return next(n for n in self.nodes if n.validator_id == vid)

    def score(self, provider: str) -> tuple[int, int]:
        with Session(self.repo.engine) as s:
            row = s.get(mk.Reputation, provider)
            return (0, 1000) if row is None else (row.penalty, row.score)


class ClusterPort:
    """The agent's ``OraclePort`` onto the cluster (what ``RayOracle`` does over actors)."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.answers: list[ChallengeAnswer] = []
        self.sent: list[tuple[ChallengeAnswer, str]] = []

    def register(self, provider_id: str, public_key: bytes) -> None:
        self.c.identities.register(provider_id, Role.PROVIDER, public_key)

    def validators(self) -> dict[str, bytes]:
        return {i: r.public_key for i, r in self.c.identities.members(Role.VALIDATOR).items()}

    def heartbeat(self, hb: Heartbeat) -> int:
        for n in self.c.nodes:
            self.c.vote(n.heartbeat(hb))
        return len(self.c.nodes)

    def mailbox(self, provider_id: str) -> Mailbox:
        return Mailbox(tuple(ch for n in self.c.nodes for ch in n.pending_for(provider_id)),
                       tuple(self.c.coordinator.warnings_for(provider_id)))

    def answer(self, answer: ChallengeAnswer, validator_id: str) -> None:
        self.answers.append(answer)
        self.sent.append((answer, validator_id))
        self.c.vote(self.c.node(validator_id).submit(answer))


def make_cluster(engine: Engine, clock: ManualClock, **overrides: int) -> Cluster:
    settings = OracleSettings(validators=3, quorum=2, **overrides)
    identities = IdentityBook(engine, clock, ttl_seconds=0)
    repo = OracleRepository(engine, clock)
    nodes = []
    for i in range(3):
        signer = Signer.from_seed(f"val-{i}", bytes([i + 1]) * 32)
        identities.register(signer.identity, Role.VALIDATOR, signer.public_key)
        nodes.append(ValidatorNode(signer, identities, repo, settings, clock))
    ledger = SqlEscrowBackend(engine, clock=clock.now)
    book = ReputationBook(3600, clock)
    co = OracleCoordinator([n.validator_id for n in nodes], identities, repo, settings, clock,
                           reputation_penalty(book), reputation_uptime(book), stake=ledger)
    return Cluster(clock, settings, identities, repo, nodes, co, ledger)


@pytest.fixture
def cluster(engine: Engine, clock: ManualClock) -> Cluster:
    return make_cluster(engine, clock)


def link_for(c: Cluster, store: EmbeddedStore, provider: str = "prov-a",
             repair: bool = False) -> tuple[OracleLink, ClusterPort]:
    port = ClusterPort(c)
    signer = Signer.from_seed(provider, b"\x42" * 32)
    fixed = {"n": 0}

    def fix() -> int:
        fixed["n"] += 1
        return 1

    link = OracleLink(signer, port, store.get_block, c.settings, c.clock,
                      lambda: (["job-1"], [8500]), fix if repair else None)
    link.fixed = fixed  # type: ignore[attr-defined]
    return link, port


def test_a_stopped_agent_is_down_at_the_fourth_miss_loses_50_once_and_uptime_is_measured(
        cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    period = c.settings.report_period_seconds
    assert period == 3600
    # Start at a period boundary so the hour's expected time is the whole hour.
    c.clock.t = c.clock.t.replace(minute=0, second=0, microsecond=0)
    hour0 = c.clock.t
    link, _ = link_for(c, store)
    for _ in range(30):  # the agent runs half an hour, one heartbeat a minute
        r = link.step()
        assert r.heartbeats == 1 and r.accepted_by == 3 and not r.errors
        for _ in range(4):
            c.clock.advance(seconds=15)
            c.tick()
    assert c.score("prov-a") == (0, 1000)
    # The agent stops: 3 misses are tolerated, the 4th is downtime, applied once.
    scores = []
    for _ in range(20 * 4):
        c.clock.advance(seconds=15)
        c.tick()
        scores.append(c.score("prov-a"))
    first = next(i for i, s in enumerate(scores) if s[0])
    # The last heartbeat came 60 s before the first of these ticks (15 s apart); the 4th miss
    # is 4 min + 10 s grace after it.
    assert 60 + 15 * first < 4 * 60 + 10 <= 60 + 15 * (first + 1)
    st = c.repo.standing("prov-a")
    assert st is not None and st.state is ProviderState.DOWN and not st.offerable
    [p] = c.repo.penalties("prov-a")
    assert (p.reason, p.points) == (PenaltyReason.DOWNTIME, 50)
    # The period ended: every validator signed its report and the agreed uptime reached the
    # reputation's uptime term once (30 beats, each vouching for 70 s, the last running out).
    while len(c.repo.reports(hour0)) < 3:
        c.clock.advance(seconds=15)
        c.tick()
    c.tick()
    with Session(c.repo.engine) as s:
        row = s.get(mk.Reputation, "prov-a")
        assert row is not None
        up, expected = row.uptime_seconds, row.expected_seconds
    assert expected == period
    assert up == 29 * 60 + 70  # heartbeats at 0..29 min, each covering 60 + 10 s
    c.coordinator.tick()  # settling again changes nothing
    with Session(c.repo.engine) as s:
        assert s.get(mk.Reputation, "prov-a").uptime_seconds == up  # type: ignore[union-attr]
    assert c.score("prov-a")[0] == 50


def test_a_deleted_image_is_warned_then_costs_200_and_a_tenth_of_the_stake_once(
        cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    link, port = link_for(c, store)
    link.step()
    c.ledger.mint("prov-a", STAKE, "fund")
    c.ledger.stake("prov-a", STAKE, "bond")
    r = store.add([pattern_bytes("held", 700_000)])
    c.targets["prov-a"] = [ImageTarget(r.cid, "", r.size)]

    def round_() -> list[Outcome | None]:
        c.force_round("prov-a")
        rep = link.step(force=True)
        assert len(rep.answered) == 3 and not rep.refused
        return [o.outcome for o in c.repo.observations("prov-a") if o.subject.startswith("poss")][-3:]

    assert round_() == [Outcome.OK] * 3
    store.unpin(r.cid)
    store.gc()  # the provider deletes the image it runs
    assert round_() == [Outcome.DATA_FRAUD] * 3
    st = c.repo.standing("prov-a")
    assert st is not None and st.state is ProviderState.SUSPECT
    assert c.score("prov-a") == (0, 1000) and c.ledger.stake_of("prov-a").bonded == STAKE
    rep = link.step(force=True)  # the warning reaches the agent (once)
    assert [w.outcome for w in rep.warnings] == [Outcome.DATA_FRAUD]
    assert link.step(force=True).warnings == []
    assert round_() == [Outcome.DATA_FRAUD] * 3  # it did not repair
    [p] = c.repo.penalties("prov-a")
    assert (p.reason, p.points, p.slash_bps) == (PenaltyReason.DATA_FRAUD, 200, 1000)
    assert c.score("prov-a") == (200, 800)
    assert c.ledger.stake_of("prov-a").bonded == STAKE - STAKE // 10
    assert c.ledger.balance_of("platform") == STAKE // 10
    assert c.repo.penalties(pending_only=True) == []
    # A replayed answer is refused and changes nothing; a restarted coordinator re-applies
    # nothing (its owed slashes are confirmed already).
    with pytest.raises(AnswerReplayedError):
        port.answer(*port.sent[-1])
    again = make_cluster(c.repo.engine, c.clock)
    again.coordinator.restore()
    assert again.coordinator.apply_slashes() == 0
    assert c.ledger.stake_of("prov-a").bonded == STAKE - STAKE // 10
    assert c.score("prov-a") == (200, 800)
    supply = c.ledger.total_supply()
    accounts = c.ledger.accounts()
    assert supply == sum(c.ledger.balance_of(a) for a in accounts) + c.ledger.escrowed_total() \
        + c.ledger.staked_total()


def test_a_warned_agent_repairs_its_images(cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    link, _ = link_for(c, store, repair=True)
    link.step()
    r = store.add([pattern_bytes("lost", 300_000)])
    c.targets["prov-a"] = [ImageTarget(r.cid, "", r.size)]
    store.unpin(r.cid)
    store.gc()
    c.force_round("prov-a")
    link.step(force=True)
    link.step(force=True)  # the warning arrives with the next poll
    assert link.fixed["n"] == 1  # type: ignore[attr-defined]


def test_a_warning_survives_a_coordinator_restart_and_the_agent_repairs(
        cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    link, _ = link_for(c, store, repair=True)
    link.step()
    r = store.add([pattern_bytes("lost-again", 300_000)])
    c.targets["prov-a"] = [ImageTarget(r.cid, "", r.size)]
    store.unpin(r.cid)
    store.gc()
    c.force_round("prov-a")
    link.step(force=True)  # answered: the quorum confirms DATA_FRAUD and warns
    # The coordinator dies before the agent's next poll; its successor holds the warning again.
    c.coordinator = make_cluster(c.repo.engine, c.clock).coordinator
    assert c.coordinator.warnings_for("prov-a") == []  # not restored yet: nothing in memory
    c.coordinator.restore()
    rep = link.step(force=True)
    assert [(w.outcome, w.strikes, w.strikes_to_penalty) for w in rep.warnings] == [
        (Outcome.DATA_FRAUD, 1, 2)]
    assert link.fixed["n"] == 1  # type: ignore[attr-defined]
    assert link.step(force=True).warnings == []  # delivered once
    assert c.score("prov-a") == (0, 1000)  # a warning, still no penalty


def test_a_restarted_coordinator_decides_the_quorum_it_missed_once(
        cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    link, _ = link_for(c, store)
    link.step()
    # Two validators saw the outage and kept their votes; the coordinator died before it
    # counted them.
    c.clock.advance(seconds=5 * 60)
    for n in c.nodes[:2]:
        votes = n.tick().votes
        assert [v.outcome for v in votes] == [Outcome.DOWNTIME]
        c.repo.record_observations(votes)
    assert c.score("prov-a") == (0, 1000)
    fresh = make_cluster(c.repo.engine, c.clock)
    assert [d.finding.outcome for d in fresh.coordinator.restore()] == [Outcome.DOWNTIME]
    assert c.score("prov-a") == (50, 950)
    third = make_cluster(c.repo.engine, c.clock)
    assert third.coordinator.restore() == []  # decided: nothing is owed any more
    assert c.score("prov-a") == (50, 950)


def test_a_restarted_validator_refuses_an_old_heartbeat_and_keeps_counting(
        cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    link, _ = link_for(c, store)
    link.step()
    c.tick()  # kept
    first = c.repo.heartbeats("prov-a", c.clock.t.replace(year=2000), c.clock.t.replace(year=2100))
    assert len(first) == 1
    fresh = ValidatorNode(c.nodes[0].signer, c.identities, c.repo, c.settings, c.clock)
    fresh.restore()
    with pytest.raises(HeartbeatReplayError):
        fresh.heartbeat(first[0])
    c.clock.advance(seconds=5 * 60)
    assert [v.outcome for v in fresh.tick().votes] == [Outcome.DOWNTIME]


def test_a_forged_challenge_gets_no_answer(cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    r = store.add([pattern_bytes("x", 5000)])
    impostor = Signer.from_seed("val-0", b"\x99" * 32)  # a validator's name, not its key
    forged = build_challenge(impostor, "prov-a", [ImageTarget(r.cid, "", r.size)], "r",
                             c.clock.now(), c.settings)

    class Forging(ClusterPort):
        def mailbox(self, provider_id: str) -> Mailbox:
            return Mailbox((forged,))

    port = Forging(c)
    link = OracleLink(Signer.from_seed("prov-a", b"\x42" * 32), port, store.get_block,
                      c.settings, c.clock)
    rep = link.step()
    assert rep.answered == [] and rep.refused == [f"{forged.challenge_id}: oracle_bad_signature"]
    assert port.answers == []
    assert link.step(force=True).refused == []  # refused once, not worked on again


def test_identities_roles_rotation_and_revocation(engine: Engine, clock: ManualClock) -> None:
    book = IdentityBook(engine, clock, ttl_seconds=0)
    a, b = Signer.from_seed("prov-z", b"\x01" * 32), Signer.from_seed("prov-z", b"\x02" * 32)
    first = book.register("prov-z", Role.PROVIDER, a.public_key)
    clock.advance(hours=1)
    rotated = book.register("prov-z", Role.PROVIDER, b.public_key)
    assert rotated.registered_at == first.registered_at  # its outage names stay the same
    assert book.public_key("prov-z") == b.public_key
    with pytest.raises(IdentityConflictError):
        book.register("prov-z", Role.VALIDATOR, a.public_key)
    assert book.revoke("prov-z") and book.public_key("prov-z") is None
    assert "prov-z" not in book.members(Role.PROVIDER)


def test_key_files_are_kept_private_and_bound_to_their_identity(tmp_path: Path) -> None:
    path = tmp_path / "oracle" / "val-0.key"
    s1 = load_or_create_signer(path, "val-0")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_signer(path, "val-0").public_key == s1.public_key
    with pytest.raises(ConfigError, match="belongs to"):
        load_or_create_signer(path, "val-1")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_or_create_signer(path, "val-0")
    path.write_text("{}")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not valid"):
        load_or_create_signer(path, "val-0")


def test_poll_leaves_half_the_expiry_to_answer() -> None:
    with pytest.raises(ValueError, match="half the expiry"):
        OracleSettings(challenge_poll_seconds=20, challenge_expiry_seconds=30)


def test_time_no_validator_watched_is_no_outage(cluster: Cluster, store: EmbeddedStore) -> None:
    c = cluster
    link, _ = link_for(c, store)
    link.step()
    c.tick()
    c.clock.advance(hours=2)  # the platform (every validator) was down for two hours
    fresh = ValidatorNode(c.nodes[0].signer, c.identities, c.repo, c.settings, c.clock)
    fresh.restore()
    assert fresh.tick().votes == []  # the provider had no way to be heard
    c.clock.advance(seconds=5 * 60)  # now it had: 4 misses since this validator started
    [v] = fresh.tick().votes
    assert v.outcome is Outcome.DOWNTIME
    # Named by the last heartbeat, as every validator that saw it names this outage.
    assert v.subject == downtime_subject(link._seq, 0)


def test_a_dispute_gets_one_bundle_every_validator_rebuilt_and_the_resolution_cites_it(
        cluster: Cluster, store: EmbeddedStore, tmp_path: Path) -> None:
    from sqlalchemy import select

    from hcp.agent.messages import LogLine
    from hcp.agent.store import SqlRunStore
    from hcp.auth.tokens import Principal
    from hcp.auth.tokens import Role as TokenRole
    from hcp.config import Settings
    from hcp.marketplace.jobs import DisputeOutcome
    from hcp.marketplace.offers import OfferSpec
    from hcp.marketplace.service import MarketplaceService
    from hcp.oracle.disputes import EvidenceCollector, keep
    from hcp.oracle.evidence import SignedBundle, verify_bundle
    from hcp.oracle.identities import RoleRegistry
    from hcp.oracle.signing import Verifier

    c = cluster
    engine = c.repo.engine
    market = MarketplaceService(engine, c.ledger, Settings(home=tmp_path / "h"), c.clock)
    provider, renter = Principal("prov-a", TokenRole.PROVIDER), Principal("rent", TokenRole.CUSTOMER)
    img = store.add([pattern_bytes("disputed", 400_000)])
    offer = market.register_offer(provider, OfferSpec("H100", 4, 16, 100, 3600 * ONE_TOKEN, "eu")).id
    c.ledger.mint("rent", 10_000 * ONE_TOKEN, "fund-rent")
    job = market.create_job(renter, offer, str(img.cid), 3600).id
    market.accept(provider, job)
    market.start(provider, job)
    link, _ = link_for(c, store)
    for _ in range(3):
        link.step()
        c.clock.advance(seconds=60)
        c.tick()
    SqlRunStore(engine).append_logs(job, [LogLine(i, "stdout", i, f"line {i}") for i in range(3)])
    market.dispute(renter, job, "it never computed anything")
    c.clock.advance(seconds=5)
    collector = EvidenceCollector(engine, c.repo, store.get_block)
    [d] = collector.owed(c.clock.now())
    bundle = collector.build(d)
    assert len(bundle.heartbeats) == 3 and bundle.image is not None and bundle.image.intact
    assert [a.kind for a in bundle.artifacts] == ["logs", "metrics"]
    # Each validator rebuilds the bundle itself and signs only the same digest.
    sigs = [(n.validator_id, s) for n in c.nodes
            if (s := collector.sign_if_same(job, bundle.sha256, n.signer)) is not None]
    assert len(sigs) == 3
    assert collector.sign_if_same(job, "0" * 64, c.nodes[0].signer) is None
    assert not keep(c.repo, SignedBundle(bundle, tuple(sigs[:1])), 2)  # fewer than k
    assert keep(c.repo, SignedBundle(bundle, tuple(sorted(sigs))), 2)
    assert not keep(c.repo, SignedBundle(bundle, tuple(sorted(sigs))), 2)  # one per dispute
    assert collector.owed(c.clock.now()) == []
    kept = c.repo.evidence(job)
    assert kept is not None and kept.bundle.sha256 == bundle.sha256
    validators = Verifier(RoleRegistry(c.identities, Role.VALIDATOR))
    providers = Verifier(RoleRegistry(c.identities, Role.PROVIDER))
    assert verify_bundle(kept, validators, 2, providers) == bundle.sha256
    _evidence_over_http(c, collector, tmp_path, job, bundle.sha256)
    admin = Principal("root", TokenRole.ADMIN)
    market.resolve(admin, job, DisputeOutcome.PROVIDER_FAULT, evidence_sha256=bundle.sha256)
    with Session(engine) as s:
        details = [e.detail for e in s.scalars(select(mk.JobEvent).where(mk.JobEvent.job_id == job))]
    assert {"outcome": "provider_fault", "evidence_sha256": bundle.sha256} in details


def _evidence_over_http(c: Cluster, collector: EvidenceCollector, tmp_path: Path, job: str,
                        sha256: str) -> None:
    """GET /api/v1/oracle/evidence/{job}: the job's parties and admins read it, verified;
    anyone else is told it does not exist; a malformed id is refused at the edge."""
    from fastapi.testclient import TestClient

    from hcp.auth.tokens import Role as TokenRole
    from hcp.auth.tokens import TokenService
    from hcp.config import Settings
    from serve_apps.edge import new_app
    from serve_apps.oracle.routes import OracleDeps, router

    secret = "e" * 40
    tokens = TokenService(secret, clock=c.clock)
    settings = Settings(home=tmp_path / "http", jwt_secret=secret, api_rate_limit=100_000)
    app = new_app(settings, title="oracle", version="1")
    app.include_router(router(settings, deps=OracleDeps(tokens, c.identities, ClusterPort(c), c.repo,
                                                        collector, c.settings.quorum)))

    def get(who: str, role: TokenRole, job_id: str = job) -> tuple[int, dict]:  # type: ignore[type-arg]
        r = client.get(f"/api/v1/oracle/evidence/{job_id}",
                       headers={"Authorization": f"Bearer {tokens.issue(who, role)}"})
        return r.status_code, r.json()

    with TestClient(app) as client:
        for who, role in (("rent", TokenRole.CUSTOMER), ("prov-a", TokenRole.PROVIDER),
                          ("root", TokenRole.ADMIN)):
            status, body = get(who, role)
            assert status == 200 and body["sha256"] == sha256 and body["verified"] is True, body
            assert len(body["signatures"]) == 3 and body["job_id"] == job
        for who, role in (("someone-else", TokenRole.CUSTOMER), ("prov-b", TokenRole.PROVIDER)):
            status, body = get(who, role)
            assert status == 404 and body["error"] == "not_found" and "bundle" not in body
        assert get("rent", TokenRole.CUSTOMER, "x" * 40)[0] == 422
        assert client.get(f"/api/v1/oracle/evidence/{job}").status_code == 401


def test_the_validators_series_follow_what_they_did(cluster: Cluster, store: EmbeddedStore) -> None:
    """What the actor shells record: heartbeats (ok, missed), verdicts, quorum rounds, penalties."""
    from hcp.observability.sink import PrometheusSink
    from hcp.observability.validators import record_decisions, record_heartbeat, record_results

    c = cluster
    sink = PrometheusSink()
    node = c.nodes[0]
    link, _ = link_for(c, store)
    link.step()
    record_heartbeat(sink, node.validator_id, "ok")
    r = store.add([pattern_bytes("m", 100_000)])
    c.targets["prov-a"] = [ImageTarget(r.cid, "", r.size)]
    c.force_round("prov-a")
    link.step(force=True)
    decisions = []
    for _ in range(6):  # the agent stops: 5 minutes of ticks
        c.clock.advance(seconds=60)
        for n in c.nodes:
            t = n.tick()
            if n is node:
                record_heartbeat(sink, n.validator_id, "missed", t.missed)
                record_results(sink, n.validator_id, t.results)
            c.repo.record_observations(t.votes)
            decisions += c.coordinator.observe(t.votes)
    record_decisions(sink, decisions)
    v = node.validator_id
    assert sink.value("hcp_validator_heartbeats_total", validator=v, result="ok") == 1
    # 6 minutes after the last beat, with 10 s grace: 5 intervals missed.
    assert sink.value("hcp_validator_heartbeats_total", validator=v, result="missed") == 5
    assert sink.value("hcp_validator_challenges_total", validator=v, result="passed") == 1
    assert sink.value("hcp_validator_quorum_rounds_total", check="heartbeat", outcome="reached") == 1
    assert sink.value("hcp_validator_penalties_total", reason="downtime") == 1
    # The same votes counted again by a fresh coordinator (a restart before it kept its
    # book): the finding was committed, so no second round and no second penalty.
    again = make_cluster(c.repo.engine, c.clock).coordinator.observe(
        c.repo.observations("prov-a", Check.HEARTBEAT))
    assert again and all(d.duplicate and not d.penalties for d in again)
    record_decisions(sink, again)
    assert sink.value("hcp_validator_penalties_total", reason="downtime") == 1
    assert sink.value("hcp_validator_quorum_rounds_total", check="heartbeat", outcome="reached") == 1
