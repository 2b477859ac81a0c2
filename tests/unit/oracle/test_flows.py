"""The issue's flows through the whole core, three validators at k = 2: an agent that stops
is reported down after the 4th missed heartbeat and loses 50 points once; a provider that
deletes a pinned image fails its challenges, is warned, then loses 200 points and part of its
stake; a lone lying validator causes nothing."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from hcp.marketplace import models as mk
from hcp.marketplace.reputation_book import ReputationBook
from hcp.oracle.apply import reputation_penalty
from hcp.oracle.audit import PossessionAuditor
from hcp.oracle.challenge import ImageTarget, answer_challenge
from hcp.oracle.coordinator import OracleCoordinator
from hcp.oracle.escalation import Decision, PenaltyReason, ProviderState
from hcp.oracle.findings import Check, Observation, Outcome
from hcp.oracle.heartbeat import Heartbeat, HeartbeatVerifier
from hcp.oracle.identities import IdentityBook, Role
from hcp.oracle.liveness import HeartbeatTracker
from hcp.oracle.repository import OracleRepository
from tests.unit.oracle.conftest import World


class Coordinator:
    """The platform's coordinator (``OracleCoordinator``) over the world's validators."""

    def __init__(self, world: World, engine: Engine) -> None:
        identities = IdentityBook(engine, world.clock, ttl_seconds=0)
        for v in world.validators:
            identities.register(v.identity, Role.VALIDATOR, v.public_key)
        self.core = OracleCoordinator(
            [v.identity for v in world.validators], identities,
            OracleRepository(engine, world.clock), world.settings, world.clock,
            reputation_penalty(ReputationBook(3600, world.clock)))
        self.repo = self.core.repo
        self.decisions: list[Decision] = []

    def vote(self, votes: list[Observation]) -> None:
        self.decisions += self.core.observe(votes)
        self.decisions += self.core.tick()

    def score(self, provider: str) -> tuple[int, int]:
        with Session(self.repo.engine) as s:
            row = s.get(mk.Reputation, provider)
            return (0, 1000) if row is None else (row.penalty, row.score)


def test_a_stopped_agent_is_down_after_the_fourth_miss_and_loses_50_once(
        world: World, engine: Engine) -> None:
    co = Coordinator(world, engine)
    verifiers = [HeartbeatVerifier(world.provider_keys, world.settings, world.clock)
                 for _ in world.validators]
    trackers = [HeartbeatTracker(v.identity, world.settings, world.clock) for v in world.validators]
    for t in trackers:
        t.expect("prov-a", world.clock.now())
    for seq in range(5):  # the agent runs five minutes, every validator receives its beats
        hb = Heartbeat.signed(world.providers["prov-a"], seq, world.clock.now())
        for v, t in zip(verifiers, trackers, strict=True):
            co.vote(t.record(v.verify(hb)))
        world.clock.advance(seconds=60)
    ticks = []
    for _ in range(20):  # the agent stopped; validators tick every 15 s
        world.clock.advance(seconds=15)
        votes = [o for t in trackers for o in t.tick()]
        co.vote(votes)
        ticks.append(co.score("prov-a"))
    # the last beat came 60 s before the first tick; the 4th miss is 4 min + 10 s after it
    first_loss = next(i for i, s in enumerate(ticks) if s[0])
    assert 60 + 15 * first_loss < 4 * 60 + 10 <= 60 + 15 * (first_loss + 1)
    assert ticks[-1] == (50, 950)  # once, however long it stays down
    assert co.repo.standing("prov-a").state is ProviderState.DOWN  # type: ignore[union-attr]


def test_a_deleted_pinned_image_is_warned_then_costs_200_and_a_slash(
        world: World, engine: Engine, store: EmbeddedStore) -> None:
    co = Coordinator(world, engine)
    r = store.add([pattern_bytes("pinned", 900_000)])
    target = ImageTarget(r.cid, "", r.size)
    auditors = [PossessionAuditor(v, world.provider_keys, world.settings, world.clock)
                for v in world.validators]

    def round_(rid: str) -> list[Outcome | None]:
        outs = []
        for aud in auditors:
            c = aud.challenge("prov-a", [target], rid, round_seed=rid.encode())
            res = aud.submit(answer_challenge(c, store.get_block, world.providers["prov-a"],
                                              world.clock.now(), world.validator_verifier))
            outs.append(res.outcome)
            co.vote([res.observation()])  # type: ignore[list-item]
        return outs

    assert round_("r1") == [Outcome.OK] * 3
    store.unpin(r.cid)
    store.gc()  # the provider deletes the image it is paid to keep
    assert round_("r2") == [Outcome.DATA_FRAUD] * 3
    assert co.score("prov-a") == (0, 1000)
    st = co.repo.standing("prov-a")
    assert st is not None and st.state is ProviderState.SUSPECT and not st.offerable
    assert [w.outcome for d in co.decisions for w in d.warnings] == [Outcome.DATA_FRAUD]
    world.clock.advance(seconds=world.settings.suspect_challenge_interval_seconds)
    assert round_("r3") == [Outcome.DATA_FRAUD] * 3
    [p] = co.repo.penalties("prov-a")
    assert (p.reason, p.points, p.slash_bps) == (PenaltyReason.DATA_FRAUD, 200, 1000)
    assert co.score("prov-a") == (200, 800)


def test_a_lone_lying_validator_causes_no_penalty(world: World, engine: Engine,
                                                 store: EmbeddedStore) -> None:
    co = Coordinator(world, engine)
    r = store.add([pattern_bytes("kept", 400_000)])
    target = ImageTarget(r.cid, "", r.size)
    honest = [PossessionAuditor(v, world.provider_keys, world.settings, world.clock)
              for v in world.validators[:2]]
    for i in range(10):
        for aud in honest:
            c = aud.challenge("prov-a", [target], f"r{i}")
            res = aud.submit(answer_challenge(c, store.get_block, world.providers["prov-a"],
                                              world.clock.now()))
            co.vote([res.observation()])  # type: ignore[list-item]
        # val-2 lies about the round and invents an outage
        co.vote([Observation("val-2", "prov-a", Check.POSSESSION, f"possession:r{i}",
                             Outcome.DATA_FRAUD, world.clock.now()),
                 Observation("val-2", "prov-a", Check.HEARTBEAT, f"down:{i}",
                             Outcome.DOWNTIME, world.clock.now())])
        world.clock.advance(seconds=120)
    world.clock.advance(seconds=world.settings.vote_window_seconds)
    co.vote([])  # closes the subjects only the liar voted on
    assert co.repo.penalties() == [] and co.score("prov-a") == (0, 1000)
    st = co.repo.standing("prov-a")
    assert st is None or st.state is ProviderState.HEALTHY
    unconfirmed = [d.finding for d in co.decisions if not d.finding.confirmed]
    assert len(unconfirmed) == 10 and all(f.dissenting == (("val-2", Outcome.DOWNTIME),)
                                          for f in unconfirmed)
