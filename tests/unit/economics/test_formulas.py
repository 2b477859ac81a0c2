"""The economics formulas on hand-checked numbers, including real blocks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.economics import (
    EconomicsParams,
    asic_breakeven_usd_per_mwh,
    btc_per_hash,
    from_fleet_spec,
    gpu_revenue_usd_per_hour,
    hashprice_usd_per_th_day,
    mining_revenue_usd_per_hour,
    power_cost_usd_per_hour,
    switching_cost_usd,
    to_micro_usd,
)
from hcp.errors import ValidationError
from hcp.fleet.spec import parse_fleet_spec


def test_genesis_block_pays_50_btc_over_2_pow_32_hashes() -> None:
    # Height 0: bits 1d00ffff = difficulty 1, subsidy 50 BTC, no fees.
    assert btc_per_hash(50.0, 0.0, 1.0) == pytest.approx(50.0 / 4_294_967_296, rel=1e-15)
    assert btc_per_hash(50.0, 0.0, 1.0) == pytest.approx(1.16415321826934814e-08, rel=1e-12)


def test_block_739872_difficulty_and_reward_by_hand() -> None:
    # Retarget block 739872 (2022-06-08), difficulty from its bits 17094b6a: 30,283,293,547,736.68.
    # Reward: 6.25 BTC subsidy plus 0.10 BTC fees (the 2022H1 daily mean was 0.1-0.15 BTC/block).
    difficulty = 30_283_293_547_736.68
    # 30,283,293,547,736.68 x 4,294,967,296 = 1.300657e23 hashes expected per block.
    per_hash = btc_per_hash(6.25, 0.10, difficulty)
    assert per_hash == pytest.approx(6.35 / 1.3006574e23, rel=1e-6)
    assert per_hash == pytest.approx(4.88211e-23, rel=1e-5)
    # An S21 (200 TH/s) for one day: 200e12 x 86400 x 4.88211e-23 = 0.000843629 BTC.
    btc_day = 200e12 * 86_400 * per_hash
    assert btc_day == pytest.approx(0.000843629, rel=1e-5)
    # Hashprice at 30,000 USD/BTC: 1e12 x 86400 x 4.88211e-23 x 30000 = 0.126544 USD per TH/s-day.
    assert hashprice_usd_per_th_day(30_000, 6.25, 0.10, difficulty) == pytest.approx(0.126544, rel=1e-5)
    # The same S21 per hour at 30k: 200e12 x 3600 x 4.88211e-23 x 30000 = 1.054536 USD/h.
    assert mining_revenue_usd_per_hour(200e12, 30_000, 6.25, 0.10, difficulty) == pytest.approx(
        1.054536, rel=1e-5)


def test_dropping_the_2_pow_32_or_the_fees_is_wrong_by_a_lot() -> None:
    right = btc_per_hash(6.25, 0.5, 30e12)
    assert 6.25 / 30e12 / right > 1e9  # the reference design's formula, without 2**32
    assert btc_per_hash(6.25, 0.0, 30e12) < right


def test_power_cost_is_watts_times_pue_times_price() -> None:
    # 3,500 W x 1.25 PUE = 4.375 kW = 0.004375 MW; x 200 USD/MWh = 0.875 USD per hour.
    assert power_cost_usd_per_hour(3500, 1.25, 200.0) == pytest.approx(0.875)
    assert power_cost_usd_per_hour(3500, 1.25, -10.0) == pytest.approx(-0.04375)  # negative prices exist


def test_breakeven_power_price_is_where_mining_profit_is_zero() -> None:
    difficulty, btc = 30_283_293_547_736.68, 30_000.0
    be = asic_breakeven_usd_per_mwh(200e12, 3500, 1.25, btc, 6.25, 0.10, difficulty)
    # 1.054536 USD/h / 0.004375 MW = 241.037 USD/MWh
    assert be == pytest.approx(241.037, rel=1e-4)
    revenue = mining_revenue_usd_per_hour(200e12, btc, 6.25, 0.10, difficulty)
    assert revenue - power_cost_usd_per_hour(3500, 1.25, be) == pytest.approx(0.0, abs=1e-12)


def test_gpu_revenue_and_switching_cost() -> None:
    assert gpu_revenue_usd_per_hour(3.44, 0.6) == pytest.approx(2.064)
    with pytest.raises(ValueError):
        gpu_revenue_usd_per_hour(3.44, 1.5)
    # 600 s of lost mining at 1.2 USD/h = 0.2 USD; switching into a mode that earns nothing is free.
    assert switching_cost_usd(600, 1.2) == pytest.approx(0.2)
    assert switching_cost_usd(600, -0.5) == 0.0


def test_money_is_recorded_as_integer_micro_usd() -> None:
    assert to_micro_usd(1.054536) == 1_054_536
    assert to_micro_usd("0.0000005") == 0  # half-even
    assert to_micro_usd("0.0000015") == 2
    assert isinstance(to_micro_usd(2.5), int)


@settings(max_examples=50, deadline=None)
@given(reward=st.floats(0.01, 100), difficulty=st.floats(1, 1e15), k=st.floats(1.01, 100))
def test_revenue_scales_with_reward_and_inversely_with_difficulty(
    reward: float, difficulty: float, k: float
) -> None:
    base = btc_per_hash(reward, 0.0, difficulty)
    assert btc_per_hash(reward * k, 0.0, difficulty) == pytest.approx(base * k, rel=1e-9)
    assert btc_per_hash(reward, 0.0, difficulty * k) == pytest.approx(base / k, rel=1e-9)
    assert math.isfinite(base) and base > 0


def test_device_economics_from_the_fleet_spec() -> None:
    spec = parse_fleet_spec({
        "fleet": "t",
        "facilities": [{"name": "a", "location": "x", "capacity_mw": 0.01, "pue": 1.2,
                        "gpus": [{"id": "g", "model": "H100"}],
                        "asics": [{"id": "s", "model": "S21", "count": 2},
                                  {"id": "x", "model": "S19 XP"}]}],
    })
    params = EconomicsParams(gpu_utilization=0.5, gpu_hashrate_overrides={"H100": 1.5e9})
    devices, facilities = from_fleet_spec(spec, params)
    by_id = {d.device_id: d for d in devices}
    assert by_id["s-0"].hashrate_hs == 200e12 and by_id["s-0"].active_w == 3500
    assert by_id["x"].hashrate_hs == 140e12 and by_id["x"].active_w == 3010
    gpu = by_id["g"]
    assert gpu.kind == "gpu" and gpu.hashrate_hs == 1.5e9 and gpu.utilization == 0.5
    assert gpu.inference_w == pytest.approx(gpu.idle_w + 0.5 * (700 - gpu.idle_w))
    assert facilities[0].capacity_w == 10_000 and facilities[0].pue == 1.2
    default = from_fleet_spec(spec)[0][0]
    assert default.hashrate_hs == EconomicsParams().gpu_hashrate_hs  # measured CPU-kernel figure


def test_bad_assumptions_are_typed_errors() -> None:
    with pytest.raises(ValidationError):
        EconomicsParams(gpu_utilization=1.2)
    with pytest.raises(ValidationError):
        EconomicsParams(asic_switch_seconds=-1)
