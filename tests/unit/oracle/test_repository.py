"""The oracle's store on SQLite: the frozen migration, penalties applied once by id (a killed
validator, a retry, two validators), standings guarded by version, reports and evidence."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import hcp.oracle.models  # noqa: F401  (registers the tables)
from hcp.errors import EquivocationError, StandingConflictError
from hcp.images.cids import Cid
from hcp.marketplace import models as mk
from hcp.marketplace.reputation_book import ReputationBook
from hcp.oracle import models as m
from hcp.oracle.apply import reputation_penalty, reputation_uptime
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.challenge import ImageTarget, build_challenge
from hcp.oracle.escalation import EscalationPolicy, ProviderState
from hcp.oracle.findings import Check, Finding, Observation, Outcome
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat
from hcp.oracle.report import ReportAccumulator, consensus, sign_report, verify_report
from hcp.oracle.repository import OracleRepository
from hcp.oracle.settings import OracleSettings
from hcp.store.models import Base
from tests.unit.images.conftest import ManualClock
from tests.unit.oracle.conftest import World

MIGRATION = Path(__file__).parents[3] / "hcp/store/migrations/versions/0012_oracle.py"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
P = "prov-a"
_EXAMPLES = itertools.count()


def test_migration_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "orc_" in repr(d)] == []


def test_migration_is_frozen() -> None:
    text = MIGRATION.read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import sqlalchemy as sa", "from alembic import op"]
    assert 'revision = "0012_oracle"' in text and 'down_revision = "0005_marketplace"' in text


def _finding(outcome: Outcome, subject: str, at: datetime = T0) -> Finding:
    return Finding(P, Check.POSSESSION, subject, outcome, ("val-0", "val-1"),
                   (("val-2", Outcome.OK),), at)


def _book(clock: ManualClock) -> ReputationBook:
    return ReputationBook(3600, clock)


def _reputation(engine: Engine, provider: str = P) -> tuple[int, int]:
    with Session(engine) as s:
        row = s.get(mk.Reputation, provider)
        return (0, 1000) if row is None else (row.penalty, row.score)


def test_a_penalty_is_applied_once_however_often_it_is_committed(engine: Engine,
                                                                 clock: ManualClock) -> None:
    repo = OracleRepository(engine, clock)
    policy = EscalationPolicy(OracleSettings())
    effect = reputation_penalty(_book(clock))
    st0 = policy.initial(P, T0)
    d1 = policy.step(st0, _finding(Outcome.DATA_FRAUD, "possession:r1"))
    assert repo.commit_decision(d1, effect) == [] and repo.standing(P) == d1.after
    d2 = policy.step(d1.after, _finding(Outcome.DATA_FRAUD, "possession:r2"))
    [p] = repo.commit_decision(d2, effect)
    assert (p.points, p.slash_bps) == (200, 1000) and _reputation(engine) == (200, 800)
    # the same decision again: a retry, a validator restarted mid-round, another validator
    assert repo.commit_decision(d2, effect) == []
    again = policy.step(d1.after, _finding(Outcome.DATA_FRAUD, "possession:r2"))
    assert again.penalties[0].penalty_id == p.penalty_id
    assert repo.commit_decision(again, effect) == []
    assert _reputation(engine) == (200, 800) and repo.penalties(P) == [p]


def test_a_validator_killed_inside_the_commit_leaves_nothing_half_done(
        engine: Engine, clock: ManualClock) -> None:
    repo = OracleRepository(engine, clock)
    policy = EscalationPolicy(OracleSettings(timeouts_as_fraud_after=1, timeout_strikes=1))
    d = policy.step(policy.initial(P, T0), _finding(Outcome.TIMEOUT, "possession:r1"))
    assert len(d.penalties) == 2  # timeout and, at once here, failed possession
    applied = reputation_penalty(_book(clock))
    calls = []

    def dies_after_the_first(s, p):  # type: ignore[no-untyped-def]
        calls.append(p.penalty_id)
        applied(s, p)
        if len(calls) == 1:
            raise KeyboardInterrupt("validator killed")

    with pytest.raises(KeyboardInterrupt):
        repo.commit_decision(d, dies_after_the_first)
    assert repo.penalties(P) == [] and repo.standing(P) is None and _reputation(engine) == (0, 1000)
    assert len(repo.commit_decision(d, dies_after_the_first)) == 2  # the restarted validator
    assert _reputation(engine)[0] == 220
    assert repo.commit_decision(d, dies_after_the_first) == []
    assert _reputation(engine)[0] == 220


def test_outside_effects_are_marked_applied_once(engine: Engine, clock: ManualClock) -> None:
    repo = OracleRepository(engine, clock)
    policy = EscalationPolicy(OracleSettings())
    d = policy.step(policy.initial(P, T0), Finding(P, Check.HEARTBEAT, "down:3", Outcome.DOWNTIME,
                                                   ("val-0", "val-1"), (), T0))
    [p] = repo.commit_decision(d)  # e.g. the chain's applyPenalty, sent with p.penalty_id
    assert repo.penalties(pending_only=True) == [p]
    assert repo.mark_applied(p.penalty_id) and not repo.mark_applied(p.penalty_id)
    assert repo.penalties(pending_only=True) == [] and repo.standing(P).state is ProviderState.DOWN  # type: ignore[union-attr]


def test_a_stale_standing_is_a_conflict_not_a_lost_update(engine: Engine, clock: ManualClock) -> None:
    repo = OracleRepository(engine, clock)
    policy = EscalationPolicy(OracleSettings())
    st0 = policy.initial(P, T0)
    repo.commit_decision(policy.step(st0, _finding(Outcome.TIMEOUT, "possession:a")))
    stale = policy.step(st0, _finding(Outcome.TIMEOUT, "possession:b"))
    with pytest.raises(StandingConflictError):
        repo.commit_decision(stale)
    fresh = policy.step(repo.standing(P), _finding(Outcome.TIMEOUT, "possession:b"))  # type: ignore[arg-type]
    repo.commit_decision(fresh)
    assert repo.standing(P).strikes_of(Outcome.TIMEOUT) == 2  # type: ignore[union-attr]
    assert list(repo.standings(ProviderState.SUSPECT)) == [P]


def test_findings_without_quorum_and_votes_are_kept(engine: Engine, clock: ManualClock) -> None:
    repo = OracleRepository(engine, clock)
    f = Finding(P, Check.POSSESSION, "possession:r9", None, (), (("val-2", Outcome.DATA_FRAUD),), T0)
    assert repo.record_finding(f) and not repo.record_finding(f)
    assert repo.findings(P) == [f]
    votes = [Observation(f"val-{i}", P, Check.POSSESSION, "possession:r9", Outcome.OK, T0, 1200,
                         "ab" * 32) for i in range(2)]
    repo.record_observations(votes)
    repo.record_observations(votes)  # a validator re-sending its votes after a restart
    assert repo.observations(P, Check.POSSESSION, "possession:r9") == votes


def _signed_reports(world: World) -> list:  # type: ignore[type-arg]
    out = []
    for i, v in enumerate(world.validators):
        acc = ReportAccumulator(v.identity, world.clock.now(), world.settings)
        acc.expect(P, world.clock.now() - timedelta(days=1),
                   last_heartbeat_at=world.clock.now() - timedelta(seconds=30))
        for minute in range(60 if i < 2 else 10):
            at = world.clock.now() + timedelta(minutes=minute)
            acc.add_heartbeat(AcceptedHeartbeat(
                Heartbeat.signed(world.providers[P], minute, at), at))
        out.append(sign_report(acc.build(), v))
    return out


def test_reports_round_trip_and_their_uptime_reaches_reputation_once(
        engine: Engine, world: World) -> None:
    repo = OracleRepository(engine, world.clock)
    reports = _signed_reports(world)
    for r in reports:
        assert repo.save_report(r) and not repo.save_report(r)
    loaded = repo.reports(world.clock.now())
    assert [verify_report(r, world.validator_verifier) for r in loaded] == [r.report for r in reports]
    [agreed] = consensus([r.report for r in loaded], world.settings.quorum)
    assert agreed.uptime_bps == 10_000  # the third validator's short count is outvoted
    effect = reputation_uptime(_book(world.clock))
    assert repo.commit_agreed(agreed, effect) and not repo.commit_agreed(agreed, effect)
    with Session(engine) as s:
        row = s.get(mk.Reputation, P)
        assert (row.uptime_seconds, row.expected_seconds) == (3600, 3600)  # type: ignore[union-attr]


def test_a_second_different_report_for_a_period_is_refused(engine: Engine, world: World) -> None:
    repo = OracleRepository(engine, world.clock)
    first = _signed_reports(world)[0]
    repo.save_report(first)
    acc = ReportAccumulator(first.report.validator_id, world.clock.now(), world.settings)
    with pytest.raises(EquivocationError):
        repo.save_report(sign_report(acc.build(), world.validators[0]))


def test_heartbeats_and_challenges_are_kept_for_evidence_then_pruned(
        engine: Engine, world: World) -> None:
    repo = OracleRepository(engine, world.clock)
    t0 = world.clock.now()
    beats = [AcceptedHeartbeat(Heartbeat.signed(world.providers[P], i, t0 + timedelta(minutes=i)),
                               t0 + timedelta(minutes=i)) for i in range(5)]
    repo.record_heartbeats(beats)
    repo.record_heartbeats(beats[2:])  # stored by a second validator too: one copy
    assert repo.heartbeats(P, t0, t0 + timedelta(minutes=3)) == [b.heartbeat for b in beats[:3]]
    c = build_challenge(world.validators[0], P, [ImageTarget(Cid.from_digest(b"\3" * 32, 0x70, 0),
                                                             "", 9000)], "r1", t0, world.settings)
    res = ChallengeResult(c, Outcome.DATA_FRAUD, t0 + timedelta(seconds=2), 2000, "lacks", "cd" * 32)
    repo.record_results([res, res])
    assert repo.results(P, t0, t0 + timedelta(hours=1)) == [res]
    counts = repo.prune(t0 + timedelta(minutes=2, seconds=1))
    assert counts == {"heartbeats": 3, "challenges": 1, "observations": 0}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(list(Outcome)), st.integers(0, 3)), max_size=25))
def test_retries_in_any_pattern_apply_each_penalty_once(engine: Engine, plan) -> None:  # type: ignore[no-untyped-def]
    """Each finding committed 1 + r times (retries, restarts): the reputation's penalty is the
    sum of the distinct penalties decided, and each penalty id has one row."""
    clock = ManualClock(T0)
    provider = f"prov-{next(_EXAMPLES)}"
    repo = OracleRepository(engine, clock)
    policy = EscalationPolicy(OracleSettings())
    effect = reputation_penalty(_book(clock))
    standing = repo.standing(provider) or policy.initial(provider, T0)
    decided = {}
    for i, (outcome, retries) in enumerate(plan):
        f = Finding(provider, Check.HEARTBEAT if outcome is Outcome.DOWNTIME else Check.POSSESSION,
                    f"s{i}", outcome, ("val-0", "val-1"), (), T0 + timedelta(minutes=i))
        d = policy.step(standing, f)
        for _ in range(1 + retries):
            repo.commit_decision(d, effect)
        standing = d.after
        decided.update({p.penalty_id: p.points for p in d.penalties})
    with Session(engine) as s:
        rows = s.scalar(select(func.count()).select_from(m.OrcPenalty)
                        .where(m.OrcPenalty.provider_id == provider))
        rep = s.get(mk.Reputation, provider)
    assert rows == len(decided)
    assert (rep.penalty if rep else 0) == sum(decided.values())
