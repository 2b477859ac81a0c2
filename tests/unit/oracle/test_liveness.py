"""Missed heartbeats: downtime on the 4th miss in a row, once per outage; then back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.oracle.findings import Check, Outcome
from hcp.oracle.heartbeat import AcceptedHeartbeat, Heartbeat
from hcp.oracle.liveness import HeartbeatTracker
from hcp.oracle.settings import OracleSettings
from tests.unit.images.conftest import ManualClock
from tests.unit.oracle.conftest import World


def _beat(world: World, tracker: HeartbeatTracker, seq: int):  # type: ignore[no-untyped-def]
    hb = Heartbeat.signed(world.providers["prov-a"], seq, world.clock.now())
    return tracker.record(AcceptedHeartbeat(hb, world.clock.now()))


def test_downtime_is_voted_at_the_fourth_missed_heartbeat_not_before(world: World) -> None:
    t = HeartbeatTracker("val-0", world.settings, world.clock)
    t.expect("prov-a", world.clock.now())
    assert _beat(world, t, 1) == []
    interval, grace = 60, world.settings.heartbeat_grace_seconds
    world.clock.advance(seconds=3 * interval + grace)
    assert t.missed("prov-a") == 3 and t.tick() == []  # three missed: a tolerance
    world.clock.advance(seconds=interval - 1)
    assert t.tick() == []
    world.clock.advance(seconds=1)
    assert t.missed("prov-a") == 4
    [vote] = t.tick()
    assert (vote.check, vote.subject, vote.outcome, vote.validator_id) == (
        Check.HEARTBEAT, "down:1", Outcome.DOWNTIME, "val-0")
    world.clock.advance(minutes=30)
    assert t.tick() == []  # one vote per outage, however long
    [back] = _beat(world, t, 2)
    assert (back.subject, back.outcome) == ("up:1", Outcome.OK)
    assert _beat(world, t, 3) == [] and t.missed("prov-a") == 0


def test_late_but_steady_heartbeats_never_count_as_missed(world: World) -> None:
    t = HeartbeatTracker("val-0", world.settings, world.clock)
    t.expect("prov-a", world.clock.now())
    for seq in range(1, 50):
        world.clock.advance(seconds=60 + world.settings.heartbeat_grace_seconds - 1)
        assert t.tick() == []
        _beat(world, t, seq)
    assert t.missed("prov-a") == 0


def test_a_provider_that_never_sent_one_is_down_from_its_registration(world: World) -> None:
    t = HeartbeatTracker("val-0", world.settings, world.clock)
    registered = world.clock.now()
    t.expect("prov-b", registered)
    world.clock.advance(seconds=4 * 60 + world.settings.heartbeat_grace_seconds)
    [vote] = t.tick()
    assert vote.subject == f"down:never:{int(registered.timestamp() * 1000)}"


def test_two_validators_name_the_same_outage_alike(world: World) -> None:
    a = HeartbeatTracker("val-0", world.settings, world.clock)
    b = HeartbeatTracker("val-1", world.settings, world.clock)
    for t in (a, b):
        t.expect("prov-a", world.clock.now())
        _beat(world, t, 17)
    world.clock.advance(seconds=4 * 60 + 10)
    [va] = a.tick()
    world.clock.advance(seconds=25)  # b ticks later: same subject still
    [vb] = b.tick()
    assert va.key == vb.key and va.finding_id == vb.finding_id


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40))
def test_one_downtime_vote_per_gap_longer_than_four_intervals(gaps: list[int]) -> None:
    """Whatever the arrival times, a vote comes exactly for the gaps past 4·60 + grace."""
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    s = OracleSettings()
    t = HeartbeatTracker("val-0", s, clock)
    t.expect("p", clock.now())
    from hcp.oracle.signing import Signer

    signer = Signer.from_seed("p", b"\x07" * 32)
    t.record(AcceptedHeartbeat(Heartbeat.signed(signer, 0, clock.now()), clock.now()))
    votes = 0
    limit = timedelta(seconds=4 * 60 + s.heartbeat_grace_seconds)
    expected = 0
    for seq, gap in enumerate(gaps, start=1):
        for _ in range(gap // 20):  # validators tick every 20 s
            clock.advance(seconds=20)
            votes += sum(o.outcome is Outcome.DOWNTIME for o in t.tick())
        clock.advance(seconds=gap % 20)
        votes += sum(o.outcome is Outcome.DOWNTIME for o in t.tick())
        expected += timedelta(seconds=gap) >= limit
        t.record(AcceptedHeartbeat(Heartbeat.signed(signer, seq, clock.now()), clock.now()))
    assert votes == expected
