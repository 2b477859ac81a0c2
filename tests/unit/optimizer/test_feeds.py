"""The live feeds built from the settings."""

from __future__ import annotations

from datetime import timedelta

from hcp.config import Settings
from hcp.economics.market import MarketHistory, MarketSimulator
from hcp.economics.optimizer.feeds import SteppedReplay, live_policy_params, make_feed
from hcp.fleet.spec import parse_fleet_spec
from tests.unit.optimizer.fakes import SPEC, T0


def test_settings_pick_the_feed_and_the_live_policy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = parse_fleet_spec(SPEC, "unit")
    s = Settings(home=tmp_path)
    assert isinstance(make_feed(s, spec), MarketSimulator)
    t = make_feed(s, spec).next_tick(T0)
    assert t is not None and set(t.power_usd_per_mwh) == {"lab"}
    assert isinstance(make_feed(s.with_(optimizer_feed="replay"), spec), SteppedReplay)
    p = live_policy_params(s.with_(optimizer_dwell_seconds=30.0, optimizer_threshold_pct=2.0))
    assert (p.dwell_s, p.threshold_pct) == (30.0, 2.0)


def test_replay_steps_one_real_hour_per_call_and_resumes_past_processed_hours() -> None:
    history = MarketHistory.load()
    feed = SteppedReplay(history, ["lab"])
    a, b = feed.next_tick(T0), feed.next_tick(T0)  # wall time does not matter: one hour per step
    assert a is not None and b is not None
    assert a.at == history.hourly.at[0] and b.at - a.at == timedelta(hours=1)
    restarted = SteppedReplay(history, ["lab"])
    restarted.resume_after(b.at)
    c = restarted.next_tick(T0)
    assert c is not None and c.at == b.at + timedelta(hours=1)
    assert c.power_usd_per_mwh["lab"] == history.tick(2, ["lab"]).power_usd_per_mwh["lab"]
