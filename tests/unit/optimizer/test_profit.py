"""Realized profit from the modes that held, and tick round trips through JSON."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.economics.optimizer.profit import mode_segments, realized_profit_micro_usd
from hcp.economics.optimizer.ticks import tick_from_dict, tick_to_dict
from hcp.economics.optimizer.types import ModeChange
from tests.unit.optimizer.fakes import T0, tick

H = timedelta(hours=1)
MODES = ["MINING", "INFERENCE", "IDLE", "CURTAILED"]


def test_segments_follow_the_committed_changes() -> None:
    changes = [ModeChange("g", T0 + 0.25 * H, "MINING", "IDLE"),
               ModeChange("g", T0 + 0.5 * H, "IDLE", "INFERENCE")]
    assert mode_segments("INFERENCE", changes, T0, T0 + H) == [
        ("MINING", 900.0), ("IDLE", 900.0), ("INFERENCE", 1800.0)]
    assert mode_segments("IDLE", [], T0, T0 + H) == [("IDLE", 3600.0)]


def test_profit_by_hand() -> None:
    rates = {"g": {"MINING": -0.1, "INFERENCE": 2.0, "IDLE": -0.01}, "a": {"MINING": 1.2, "CURTAILED": 0.0}}
    changes = [ModeChange("g", T0 + 0.5 * H, "MINING", "INFERENCE"),
               ModeChange("a", T0 + 0.75 * H, "MINING", "CURTAILED"),
               ModeChange("other", T0 + 0.1 * H, "IDLE", "MINING")]  # not priced: left out
    out = realized_profit_micro_usd(rates, {"g": "INFERENCE", "a": "CURTAILED", "other": "MINING"},
                                    changes, T0, T0 + 2 * H)
    # g: 0.5 h at -0.1, then 1.5 h at 2.0 = 2.95 USD; a: 0.75 h at 1.2 = 0.9 USD.
    assert out == {"g": 2_950_000, "a": 900_000}


@settings(max_examples=60, deadline=None)
@given(
    start_mode=st.sampled_from(MODES),
    steps=st.lists(st.tuples(st.integers(0, 7200), st.sampled_from(MODES)), max_size=6),
    rate=st.floats(-5, 5, allow_nan=False),
)
def test_segments_cover_the_period_exactly(start_mode: str, steps: list[tuple[int, str]], rate: float) -> None:
    steps = sorted(steps)
    changes, mode = [], start_mode
    for sec, to in steps:
        changes.append(ModeChange("d", T0 + timedelta(seconds=sec), mode, to))
        mode = to
    segs = mode_segments(mode, changes, T0, T0 + H)
    assert abs(sum(s for _, s in segs) - 3600.0) < 1e-6
    assert all(s > 0 for _, s in segs)
    # With the same rate in every mode, the path does not matter: rate x 1 h.
    out = realized_profit_micro_usd({"d": dict.fromkeys(MODES, rate)}, {"d": mode}, changes, T0, T0 + H)
    assert abs(out["d"] - rate * 1e6) <= 1


def test_tick_round_trip() -> None:
    t = tick(T0, power=-3.5)
    assert tick_from_dict(tick_to_dict(t)) == t
