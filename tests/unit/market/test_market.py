"""Ticks, the real series loaders, replay with day-ahead publication, the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hcp.economics.market import (
    LiveFeed,
    MarketHistory,
    MarketSimulator,
    PriceFeed,
    PriceTick,
    ReplayFeed,
)
from hcp.economics.market.gpu_prices import load_gpu_prices, normalize_model
from hcp.economics.market.history import block_subsidy_btc, load_btc_daily, packaged
from hcp.errors import MarketDataError


@pytest.fixture(scope="module")
def history() -> MarketHistory:
    return MarketHistory.load()


def _tick(**kw: object) -> PriceTick:
    base: dict[str, object] = {
        "at": datetime(2022, 1, 1, tzinfo=UTC), "btc_usd": 40_000.0, "difficulty": 24e12,
        "block_subsidy_btc": 6.25, "fees_per_block_btc": 0.1,
        "power_usd_per_mwh": {"a": 100.0}, "gpu_usd_per_hour": {"H100": 3.0},
    }
    base.update(kw)
    return PriceTick(**base)  # type: ignore[arg-type]


def test_tick_validates_its_fields() -> None:
    assert _tick().block_reward_btc == pytest.approx(6.35)
    assert _tick(power_usd_per_mwh={"a": -5.0}).power_usd_per_mwh["a"] == -5.0  # negative prices happen
    with pytest.raises(MarketDataError):
        _tick(at=datetime(2022, 1, 1))  # naive
    with pytest.raises(MarketDataError) as err:
        _tick(btc_usd=0.0, fees_per_block_btc=-1.0)
    assert set(err.value.to_dict()["fields"]) == {"btc_usd", "fees_per_block_btc"}
    with pytest.raises(MarketDataError):
        _tick(power_usd_per_mwh={"a": float("nan")})


def test_real_series_align_hour_by_hour(history: MarketHistory) -> None:
    h = history.hourly
    assert len(h) == 4345
    assert h.at[0] == datetime(2021, 12, 31, 23, tzinfo=UTC)
    assert h.at[-1] == datetime(2022, 6, 30, 23, tzinfo=UTC)
    assert all((b - a) == timedelta(hours=1) for a, b in zip(h.at, h.at[1:], strict=False))
    # 2022-01-01's open was 46,311 USD; 2021-12-31 23:00 UTC still uses 2021-12-31's open.
    i = h.at.index(datetime(2022, 1, 1, 5, tzinfo=UTC))
    assert 46_000 < h.btc_usd[i] < 47_000
    assert set(h.subsidy_btc.tolist()) == {6.25}
    # The retarget of 2022-06-08 11:07 UTC (difficulty 30.28 T) applies from the next hour.
    j = h.at.index(datetime(2022, 6, 8, 12, tzinfo=UTC))
    assert h.difficulty[j] == pytest.approx(30_283_293_547_736.68)
    assert h.difficulty[j - 2] != h.difficulty[j]
    assert (h.fees_per_block_btc > 0.01).all() and (h.fees_per_block_btc < 2).all()


def test_day_ahead_prices_are_known_only_after_publication(history: MarketHistory) -> None:
    h = history.hourly
    # 2022-03-10 11:00 UTC = 12:00 Brussels: tomorrow's auction not yet published.
    noon = h.at.index(datetime(2022, 3, 10, 11, tzinfo=UTC))
    before = history.tick(noon, ["a"])
    assert len(before.power_forecast_usd_per_mwh["a"]) == 11  # 13:00..23:00 local today
    after = history.tick(noon + 1, ["a"])  # 13:00 local: D+1 published
    assert len(after.power_forecast_usd_per_mwh["a"]) == 10 + 24
    assert after.power_forecast_usd_per_mwh["a"][0] == pytest.approx(
        h.power_eur_per_mwh[noon + 2] * history.eur_usd)
    assert history.tick(noon, ["a"], forecast=False).power_forecast_usd_per_mwh == {}


def test_power_is_converted_with_the_explicit_rate() -> None:
    h1 = MarketHistory.load(eur_usd=1.0)
    h2 = MarketHistory.load(eur_usd=1.2)
    assert h2.tick(100, ["a"]).power_usd_per_mwh["a"] == pytest.approx(
        1.2 * h1.tick(100, ["a"]).power_usd_per_mwh["a"])
    with pytest.raises(MarketDataError):
        MarketHistory.load(eur_usd=0)


def test_replay_feed_emits_each_hour_once(history: MarketHistory) -> None:
    feed = ReplayFeed(history, ["a"])
    assert isinstance(feed, PriceFeed)
    assert feed.next_tick(datetime(2021, 1, 1, tzinfo=UTC)) is None  # before the series
    t = datetime(2022, 2, 1, 10, 30, tzinfo=UTC)
    tick = feed.next_tick(t)
    assert tick is not None and tick.at == datetime(2022, 2, 1, 10, tzinfo=UTC)
    assert feed.next_tick(t + timedelta(minutes=10)) is None  # same hour: nothing new
    nxt = feed.next_tick(t + timedelta(hours=1))
    assert nxt is not None and nxt.at == datetime(2022, 2, 1, 11, tzinfo=UTC)


def test_missing_columns_and_files_are_typed_errors(tmp_path: Path) -> None:
    bad = tmp_path / "btc.csv"
    bad.write_text("date,open_usd\n2022-01-01,1\n")
    with pytest.raises(MarketDataError, match="missing column"):
        load_btc_daily(bad)
    with pytest.raises(MarketDataError, match="no such file"):
        MarketHistory.load(power=tmp_path / "nope.csv")
    text = tmp_path / "btc2.csv"
    text.write_text(packaged("btc_daily_2021_2022h1.csv").read_text().replace("29001.71", "abc", 1))
    with pytest.raises(MarketDataError, match="non-numeric"):
        load_btc_daily(text)


def test_window_of_the_same_series_plugs_in(tmp_path: Path) -> None:
    src = packaged("electricity_be_hourly_2022h1.csv").read_text().splitlines()
    window = tmp_path / "power.csv"
    window.write_text("\n".join([src[0], *src[2000:2100]]) + "\n")
    h = MarketHistory.load(power=window)
    assert len(h) == 100


def test_gpu_prices_keep_per_gpu_rows_only() -> None:
    assert normalize_model("8x NVIDIA H100 SXM") == (None, "whole multi-GPU machine")
    assert normalize_model("NVIDIA HGX H100") == (None, "whole multi-GPU machine")
    assert normalize_model("1x NVIDIA H100 PCIe") == ("H100", None)
    assert normalize_model("A100 80GB PCIe") == ("A100", None)
    assert normalize_model("NVIDIA L40S") == ("L40S", None)
    levels = load_gpu_prices(packaged("gpu_rental_prices_2024.csv"))
    assert levels.skipped["price is not a number"] >= 1  # "Enquire for pricing"
    assert levels.skipped["whole multi-GPU machine"] >= 1
    assert 2.0 < levels.usd_per_hour["H100"] < 5.0
    assert levels.usd_per_hour["H100"] > levels.usd_per_hour["L40S"] > levels.usd_per_hour["L4"]


def test_subsidy_halvings() -> None:
    from datetime import date

    assert block_subsidy_btc(date(2009, 1, 3)) == 50
    assert block_subsidy_btc(date(2020, 5, 10)) == 12.5
    assert block_subsidy_btc(date(2022, 6, 1)) == 6.25


def test_simulator_is_seeded_and_stays_plausible() -> None:
    def run(seed: int) -> list[PriceTick]:
        sim = MarketSimulator(seed, ["a", "b"])
        t0 = datetime(2022, 6, 1, tzinfo=UTC)
        ticks = [sim.next_tick(t0 + timedelta(minutes=15 * k)) for k in range(2000)]
        return [t for t in ticks if t is not None]

    a, b, c = run(7), run(7), run(8)
    assert [t.btc_usd for t in a] == [t.btc_usd for t in b]
    assert [t.btc_usd for t in a] != [t.btc_usd for t in c]
    assert len(a) == 2000 and isinstance(MarketSimulator(1, ["a"]), PriceFeed)
    powers = [t.power_usd_per_mwh["a"] for t in a]
    assert min(powers) > 0 and max(powers) / min(powers) > 2  # it moves, spikes included
    assert all(5_000 < t.btc_usd < 200_000 for t in a)
    sim = MarketSimulator(1, ["a"])
    t0 = datetime(2022, 6, 1, tzinfo=UTC)
    assert sim.next_tick(t0) is not None and sim.next_tick(t0) is None  # no time passed, no tick


def test_live_feed_over_an_adapter() -> None:
    class Quotes:
        def btc_usd(self) -> float:
            return 30_000.0

        def network(self) -> tuple[float, float, float]:
            return 30e12, 6.25, 0.1

        def power_usd_per_mwh(self) -> dict[str, float]:
            return {"a": 120.0}

        def gpu_usd_per_hour(self) -> dict[str, float]:
            return {"H100": 3.0}

    feed = LiveFeed(Quotes(), min_interval_s=5)
    t0 = datetime(2022, 6, 1, tzinfo=UTC)
    tick = feed.next_tick(t0)
    assert tick is not None and tick.block_reward_btc == pytest.approx(6.35)
    assert feed.next_tick(t0 + timedelta(seconds=2)) is None
    assert feed.next_tick(t0 + timedelta(seconds=5)) is not None
