"""The oracle's store on PostgreSQL (production): penalties once under concurrent writers,
standings guarded by version, reports, evidence, ON CONFLICT paths."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hcp.errors import StandingConflictError
from hcp.marketplace import models as mk
from hcp.marketplace.reputation_book import ReputationBook
from hcp.oracle.apply import reputation_penalty, reputation_uptime
from hcp.oracle.escalation import EscalationPolicy
from hcp.oracle.findings import Check, Finding, Observation, Outcome
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat
from hcp.oracle.report import ReportAccumulator, consensus, sign_report, verify_report
from hcp.oracle.repository import OracleRepository
from hcp.oracle.settings import OracleSettings
from hcp.store.db import connect, migrate
from tests.conftest import fresh_postgres_database
from tests.unit.images.conftest import ManualClock
from tests.unit.oracle.conftest import make_world

T0 = datetime(2026, 12, 1, tzinfo=UTC)
P = "prov-a"


@pytest.fixture
def pg() -> Iterator[Engine]:
    with fresh_postgres_database() as url:
        engine = connect(url)
        migrate(engine)
        yield engine
        engine.dispose()


def _penalty_of(engine: Engine) -> int:
    with Session(engine) as s:
        row = s.get(mk.Reputation, P)
        return 0 if row is None else row.penalty


def test_two_validators_committing_one_decision_at_once_apply_it_once(pg: Engine) -> None:
    clock = ManualClock(T0)
    policy = EscalationPolicy(OracleSettings())
    down = Finding(P, Check.HEARTBEAT, "down:9", Outcome.DOWNTIME, ("val-0", "val-1"), (), T0)
    d = policy.step(policy.initial(P, T0), down)
    effect = reputation_penalty(ReputationBook(3600, clock))
    results: list[object] = []
    barrier = threading.Barrier(4)

    def commit() -> None:
        repo = OracleRepository(pg, clock)  # each validator its own repository
        barrier.wait()
        try:
            results.append(repo.commit_decision(d, effect))
        except StandingConflictError as exc:  # lost the race on the standing row
            results.append(exc)

    threads = [threading.Thread(target=commit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committed = [r for r in results if isinstance(r, list) and r]
    assert len(committed) == 1 and _penalty_of(pg) == 50
    repo = OracleRepository(pg, clock)
    assert [p.points for p in repo.penalties(P)] == [50]
    assert repo.commit_decision(d, effect) == [] and _penalty_of(pg) == 50


def test_standing_versions_and_retries_on_postgres(pg: Engine) -> None:
    clock = ManualClock(T0)
    repo = OracleRepository(pg, clock)
    policy = EscalationPolicy(OracleSettings())
    st0 = policy.initial(P, T0)
    f1 = Finding(P, Check.POSSESSION, "possession:1", Outcome.DATA_FRAUD, ("val-0", "val-1"), (), T0)
    f2 = Finding(P, Check.POSSESSION, "possession:2", Outcome.DATA_FRAUD, ("val-0", "val-1"), (), T0)
    repo.commit_decision(policy.step(st0, f1))
    with pytest.raises(StandingConflictError):
        repo.commit_decision(policy.step(st0, f2))
    d2 = policy.step(repo.standing(P), f2)  # type: ignore[arg-type]
    effect = reputation_penalty(ReputationBook(3600, clock))
    [p] = repo.commit_decision(d2, effect)
    assert (p.points, p.slash_bps) == (200, 1000) and _penalty_of(pg) == 200
    assert repo.commit_decision(d2, effect) == [] and _penalty_of(pg) == 200


def test_reports_votes_and_evidence_on_postgres(pg: Engine) -> None:
    world = make_world(ManualClock(T0))
    repo = OracleRepository(pg, world.clock)
    signed = []
    for v in world.validators[:2]:
        acc = ReportAccumulator(v.identity, T0, world.settings)
        for i in range(1500):
            acc.expect(f"p{i:04d}", T0 - timedelta(days=1), last_heartbeat_at=T0)
        signed.append(sign_report(acc.build(), v))
    for s in signed:
        assert repo.save_report(s) and not repo.save_report(s)
    loaded = repo.reports(T0)
    assert [verify_report(r, world.validator_verifier) for r in loaded] == [s.report for s in signed]
    agreed = consensus([r.report for r in loaded], 2)
    assert len(agreed) == 1500 and agreed[0].up_seconds == 70
    effect = reputation_uptime(ReputationBook(3600, world.clock))
    assert repo.commit_agreed(agreed[0], effect) and not repo.commit_agreed(agreed[0], effect)

    votes = [Observation(f"val-{i}", P, Check.POSSESSION, "possession:r1", Outcome.OK, T0)
             for i in range(3)]
    repo.record_observations(votes)
    repo.record_observations(votes)
    assert repo.observations(P) == votes
    beats = [AcceptedHeartbeat(Heartbeat.signed(world.providers[P], i, T0 + timedelta(minutes=i)),
                               T0 + timedelta(minutes=i)) for i in range(3)]
    repo.record_heartbeats(beats)
    repo.record_heartbeats(beats)
    assert repo.heartbeats(P, T0, T0 + timedelta(hours=1)) == [b.heartbeat for b in beats]
    assert repo.prune(T0 + timedelta(minutes=1, seconds=1))["heartbeats"] == 2
