"""Hourly reports: uptime and response time measured, signed, and agreed by k validators."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from hcp.errors import InvalidEvidenceError, OracleSignatureError, ValidationError
from hcp.images.cids import Cid
from hcp.marketplace.reputation import ReputationStats, terms_bps
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.challenge import ImageTarget, build_challenge
from hcp.oracle.findings import Check, Observation, Outcome
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat
from hcp.oracle.report import (
    ProviderMeasurement,
    ReportAccumulator,
    SignedReport,
    ValidationReport,
    consensus,
    report_findings,
    sign_report,
    verify_report,
)
from tests.unit.oracle.conftest import World

HOUR = 3_600_000


def _beats(world: World, acc: ReportAccumulator, provider: str, start_s: float, stop_s: float,
           jitter: float = 0.0, seed: int = 1) -> int:
    rng = random.Random(seed)
    t0 = world.clock.now()
    t, seq = start_s, 0
    while t < stop_s:
        at = t0 + timedelta(seconds=t)
        hb = Heartbeat.signed(world.providers[provider], seq, at)
        acc.add_heartbeat(AcceptedHeartbeat(hb, at + timedelta(milliseconds=150)))
        seq += 1
        t += 60 + rng.uniform(-jitter, jitter)
    return seq


def _acc(world: World, v: int = 0) -> ReportAccumulator:
    """Both providers registered long ago; prov-a's last heartbeat came a minute before."""
    acc = ReportAccumulator(world.validators[v].identity, world.clock.now(), world.settings)
    acc.expect("prov-a", world.clock.now() - timedelta(days=1),
               last_heartbeat_at=world.clock.now() - timedelta(seconds=60))
    acc.expect("prov-b", world.clock.now() - timedelta(days=1))
    return acc


def test_steady_heartbeats_with_jitter_are_a_full_hour(world: World) -> None:
    acc = _acc(world)
    n = _beats(world, acc, "prov-a", 0, 3600, jitter=8)
    [a, b] = acc.build().measurements
    assert (a.provider_id, a.heartbeats, a.expected_ms, a.up_ms) == ("prov-a", n, HOUR, HOUR)
    assert a.uptime_bps == 10_000 and a.heartbeat_delay_ms == 150 * n
    assert (b.provider_id, b.up_ms, b.uptime_bps) == ("prov-b", 0, 0)


def test_an_agent_stopped_at_half_past_is_up_until_its_last_cover(world: World) -> None:
    acc = _acc(world)
    _beats(world, acc, "prov-a", 0, 1800)  # last beat at 29:00 (+150 ms), covers 70 s
    m = acc.build().measurements[0]
    assert m.up_ms == (29 * 60 + 70) * 1000 + 150 and 5000 < m.uptime_bps < 5200


def test_a_provider_registered_mid_period_is_due_from_then(world: World) -> None:
    acc = ReportAccumulator("val-0", world.clock.now(), world.settings)
    acc.expect("prov-a", world.clock.now() + timedelta(minutes=45))
    _beats(world, acc, "prov-a", 45 * 60, 3600)
    m = acc.build().measurements[0]
    # due from 45:00; its first heartbeat arrives 150 ms later
    assert (m.expected_ms, m.up_ms) == (15 * 60_000, 15 * 60_000 - 150)


def test_the_last_heartbeat_before_the_period_covers_its_start(world: World) -> None:
    acc = ReportAccumulator("val-0", world.clock.now(), world.settings)
    acc.expect("prov-a", world.clock.now() - timedelta(days=1),
               last_heartbeat_at=world.clock.now() - timedelta(seconds=30))
    m = acc.build().measurements[0]
    assert m.up_ms == 40_000 and m.expected_ms == HOUR


def _result(world: World, outcome: Outcome | None, rt: int | None, provider: str = "prov-a"):  # type: ignore[no-untyped-def]
    c = build_challenge(world.validators[0], provider, [ImageTarget(
        Cid.from_digest(b"\2" * 32, 0x70, 0), "", 5000)], "r", world.clock.now(), world.settings)
    return ChallengeResult(c, outcome, world.clock.now() + timedelta(seconds=1), rt)


def test_challenges_and_response_times_are_counted(world: World) -> None:
    acc = _acc(world)
    for outcome, rt in [(Outcome.OK, 1200), (Outcome.OK, 2800), (Outcome.TIMEOUT, None),
                        (Outcome.DATA_FRAUD, 900), (None, 100), (Outcome.BAD_SIGNATURE, None)]:
        acc.add_result(_result(world, outcome, rt))
    acc.add_observation(Observation("val-0", "prov-a", Check.HEARTBEAT, "down:1",
                                    Outcome.DOWNTIME, world.clock.now()))
    m = acc.build().measurements[0]
    assert (m.challenges, m.passed, m.timeouts, m.frauds, m.bad_signatures,
            m.downtime_episodes) == (5, 2, 1, 1, 1, 1)
    assert (m.responses, m.response_ms_total, m.response_ms_max, m.response_ms_avg) == (
        3, 4900, 2800, 1633)
    assert m.response_bps(30_000) == 10_000 - 1633 * 10_000 // 30_000


def test_reports_are_signed_canonical_and_tamper_evident(world: World) -> None:
    acc = _acc(world)
    _beats(world, acc, "prov-a", 0, 3600)
    report = acc.build()
    signed = sign_report(report, world.validators[0])
    assert verify_report(signed, world.validator_verifier) == report
    assert ValidationReport.from_body(report.body()) == report
    assert report.report_id == "rep_" + report.digest[:32]
    forged = replace(report, measurements=(replace(report.measurements[0], up_ms=0),
                                           *report.measurements[1:]))
    with pytest.raises(OracleSignatureError):
        verify_report(SignedReport(forged, signed.signature), world.validator_verifier)
    with pytest.raises(ValueError):
        sign_report(report, world.validators[1])
    with pytest.raises(ValidationError):
        ValidationReport.from_body({**report.body(), "rows": [["p", -1] + [0] * 12]})


def _report(validator: str, up_ms: int, rt: int | None = None, failures: int = 0,
            start=None) -> ValidationReport:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    start = start or datetime(2026, 12, 1, tzinfo=UTC)
    m = ProviderMeasurement("prov-a", HOUR, up_ms, 60, 0, 0, 10, 10 - failures, failures, 0, 0,
                            (rt or 0) * 10 if rt is not None else 0, 10 if rt is not None else 0,
                            rt or 0)
    return ValidationReport(validator, start, start + timedelta(hours=1), (m,))


def test_consensus_is_what_k_reports_support_so_a_lone_liar_moves_nothing() -> None:
    honest = [_report("val-0", HOUR - 60_000, 2000), _report("val-1", HOUR, 2400)]
    for liar in (_report("val-2", 0, 29_000, failures=10), _report("val-2", HOUR, 1)):
        [a] = consensus([*honest, liar], k=2)
        assert HOUR - 60_000 <= a.up_seconds * 1000 <= HOUR
        assert 2000 <= (a.response_ms_avg or 0) <= 2400 and a.failures == 0
        assert a.validators == ("val-0", "val-1", "val-2")
    assert consensus([honest[0]], k=2) == []  # one report alone is no agreement


def test_consensus_feeds_the_reputations_uptime_term() -> None:
    [a] = consensus([_report("val-0", HOUR // 2), _report("val-1", HOUR // 2)], k=2)
    terms = terms_bps(ReputationStats(uptime_seconds=a.up_seconds,
                                      expected_seconds=a.expected_seconds), 3600)
    assert terms["uptime"] == 5000 == a.uptime_bps


def test_reports_of_different_periods_do_not_mix() -> None:
    from datetime import UTC, datetime

    other = _report("val-1", HOUR, start=datetime(2026, 12, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidEvidenceError):
        consensus([_report("val-0", HOUR), other], k=2)


def test_a_clean_agreed_hour_is_a_confirmed_pass() -> None:
    agreed = consensus([_report("val-0", HOUR), _report("val-1", HOUR)], k=2)
    [f] = report_findings(agreed)
    assert (f.check, f.outcome, f.confirmed) == (Check.HEARTBEAT, Outcome.OK, True)
    assert report_findings(consensus([_report("val-0", HOUR // 2), _report("val-1", HOUR)], 2)) == []


def test_ten_thousand_providers_make_one_report(world: World) -> None:
    acc = ReportAccumulator("val-0", world.clock.now(), world.settings)
    t0 = world.clock.now()
    signer = world.providers["prov-a"]
    hb = Heartbeat.signed(signer, 1, t0)
    for i in range(10_000):
        acc.expect(f"p{i:05d}", t0)
        acc.add_heartbeat(AcceptedHeartbeat(replace(hb, provider_id=f"p{i:05d}"),
                                             t0 + timedelta(seconds=i % 3600)))
    r = acc.build()
    assert len(r.measurements) == 10_000 and r.measurements[0].provider_id == "p00000"
    assert all(m.heartbeats == 1 and m.up_ms == 70_000 for m in r.measurements[:3530])
