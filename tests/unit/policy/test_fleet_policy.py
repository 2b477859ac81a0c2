"""The fleet policy: curtailment, GPU idling, thresholds and dwell, power caps, restart state."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from hcp.economics import (
    DeviceEconomics,
    EconomicsParams,
    FacilityEconomics,
    asic_breakeven_usd_per_mwh,
)
from hcp.economics.market.tick import PriceTick
from hcp.economics.policy import Decision, DecisionReason, FleetPolicy, PolicyParams
from hcp.errors import ValidationError
from hcp.fleet.spec import parse_fleet_spec

T0 = datetime(2022, 6, 1, tzinfo=UTC)
DIFF = 30e12


def s21(i: int, fac: str = "a") -> DeviceEconomics:
    return DeviceEconomics(f"s21-{i}", fac, "asic", "S21", 3500, 0, 200e12, 0, 600)


def s19(i: int, fac: str = "a") -> DeviceEconomics:
    return DeviceEconomics(f"s19-{i}", fac, "asic", "S19 XP", 3010, 0, 140e12, 0, 600)


def h100(i: int, fac: str = "a") -> DeviceEconomics:
    return DeviceEconomics(f"h100-{i}", fac, "gpu", "H100", 700, 80, 4.3e6, 0.6, 60)


def tick(at: datetime, power: float | dict[str, float], gpu: float = 3.0, btc: float = 30_000.0,
         forecast: tuple[float, ...] | None = None) -> PriceTick:
    prices = power if isinstance(power, dict) else {"a": power}
    return PriceTick(at=at, btc_usd=btc, difficulty=DIFF, block_subsidy_btc=6.25, fees_per_block_btc=0.1,
                     power_usd_per_mwh=prices, gpu_usd_per_hour={"H100": gpu},
                     power_forecast_usd_per_mwh={f: forecast for f in prices} if forecast is not None else {})


def breakeven() -> float:
    return asic_breakeven_usd_per_mwh(200e12, 3500, 1.0, 30_000, 6.25, 0.1, DIFF)


def policy(devices: list[DeviceEconomics], cap_w: float = 1e9, **kw: object) -> FleetPolicy:
    params = PolicyParams(**{"dwell_s": 0.0, **kw})  # type: ignore[arg-type]
    return FleetPolicy(devices, [FacilityEconomics("a", cap_w, 1.0)], params)


def test_asic_curtails_above_breakeven_and_resumes_below() -> None:
    be = breakeven()
    pol = policy([s21(0)])
    out = pol.decide(tick(T0, be * 1.3), {"s21-0": "MINING"}, T0)
    assert [(d.to_mode, d.reason) for d in out] == [("CURTAILED", DecisionReason.CURTAIL_POWER_PRICE)]
    assert out[0].expected_gain_usd_per_hour > 0
    assert pol.decide(tick(T0, be * 1.3), {"s21-0": "CURTAILED"}, T0) == []
    back = pol.decide(tick(T0 + timedelta(hours=1), be * 0.7), {"s21-0": "CURTAILED"}, T0 + timedelta(hours=1))
    assert [(d.to_mode, d.reason) for d in back] == [("MINING", DecisionReason.RESUME_POWER_PRICE)]


def test_a_gpu_mining_bitcoin_loses_money_so_it_idles_rather_than_mines() -> None:
    pol = policy([h100(0)])
    # No inference demand priced: the measured hashrate earns ~nothing against 700 W of power.
    out = pol.decide(tick(T0, 150.0, gpu=0.0), {"h100-0": "MINING"}, T0)
    assert len(out) == 1 and out[0].to_mode == "IDLE"
    assert out[0].reason == DecisionReason.CURTAIL_POWER_PRICE
    # With inference priced it serves.
    out = pol.decide(tick(T0, 150.0, gpu=3.0), {"h100-0": "IDLE"}, T0)
    assert [d.to_mode for d in out] == ["INFERENCE"]
    # Even with free power mining earns ~2e-8 USD/h: under the minimum gain worth a switch.
    assert pol.decide(tick(T0, 0.0, gpu=0.0), {"h100-0": "IDLE"}, T0) == []


def test_threshold_blocks_small_advantages() -> None:
    be = breakeven()
    strict = policy([s21(0)], threshold_pct=20.0)
    # 10 % below break-even: mining earns ~10 % of its revenue, i.e. less than 20 % of it.
    assert strict.decide(tick(T0, be * 0.95), {"s21-0": "CURTAILED"}, T0) == []
    assert strict.decide(tick(T0, be * 0.5), {"s21-0": "CURTAILED"}, T0) != []


def test_dwell_waits_until_the_advantage_has_held() -> None:
    be = breakeven()
    pol = policy([s21(0)], dwell_s=1800.0)
    modes = {"s21-0": "MINING"}
    assert pol.decide(tick(T0, be * 1.5), modes, T0) == []
    assert pol.decide(tick(T0 + timedelta(minutes=20), be * 1.5), modes, T0 + timedelta(minutes=20)) == []
    # A dip back under break-even restarts the streak.
    assert pol.decide(tick(T0 + timedelta(minutes=25), be * 0.8), modes, T0 + timedelta(minutes=25)) == []
    at = T0 + timedelta(minutes=30)
    assert pol.decide(tick(at, be * 1.5), modes, at) == []
    at2 = T0 + timedelta(minutes=61)
    assert [d.to_mode for d in pol.decide(tick(at2, be * 1.5), modes, at2)] == ["CURTAILED"]


def test_switch_must_pay_back_its_cost() -> None:
    be = breakeven()
    # Resuming costs 600 s of mining revenue (~0.18 USD); a gain of ~1 % of revenue does not repay it
    # within the payback window, a large one does.
    pol = policy([s21(0)], threshold_pct=0.0, payback_s=3600.0)
    assert pol.decide(tick(T0, be * 0.99), {"s21-0": "CURTAILED"}, T0) == []
    assert pol.decide(tick(T0, be * 0.5), {"s21-0": "CURTAILED"}, T0) != []


def test_published_prices_veto_a_switch_that_would_reverse_soon() -> None:
    be = breakeven()
    pol = policy([s21(0)], threshold_pct=0.0)
    # Power is 10 % over break-even for this one hour only, then cheap again: stopping saves
    # ~0.1 USD but restarting costs ~0.18 USD, so the policy keeps mining.
    assert pol.decide(tick(T0, be * 1.1, forecast=(be * 0.5,) * 10), {"s21-0": "MINING"}, T0) == []
    # Dear for the whole published horizon: curtail.
    out = pol.decide(tick(T0, be * 1.1, forecast=(be * 1.3,) * 10), {"s21-0": "MINING"}, T0)
    assert [d.to_mode for d in out] == ["CURTAILED"]


def test_power_cap_runs_the_most_profitable_devices_first() -> None:
    be = breakeven()
    devices = [s19(0), s19(1), s21(0), s21(1), h100(0)]
    # Room for the GPU and two ASICs only.
    pol = policy(devices, cap_w=7_000 + 600)
    modes = {d.device_id: ("IDLE" if d.kind == "gpu" else "CURTAILED") for d in devices}
    out = pol.decide(tick(T0, be * 0.3), modes, T0)
    for d in out:
        modes[d.device_id] = d.to_mode
    assert modes == {"s21-0": "MINING", "s21-1": "MINING", "h100-0": "INFERENCE",
                     "s19-0": "CURTAILED", "s19-1": "CURTAILED"}
    # Devices that were running and no longer fit are curtailed with the POWER_CAP reason.
    running = {d.device_id: ("INFERENCE" if d.kind == "gpu" else "MINING") for d in devices}
    capped = pol.decide(tick(T0, be * 0.3), running, T0)
    assert {d.device_id for d in capped} == {"s19-0", "s19-1"}
    assert {d.reason for d in capped} == {DecisionReason.POWER_CAP}
    draw = 3500 * 2 + pol.arrays.it_w[4, 1]
    assert draw <= 7_600


def test_caps_are_per_facility() -> None:
    devices = [s21(0, "a"), s21(1, "a"), s21(2, "b")]
    facs = [FacilityEconomics("a", 4000, 1.0), FacilityEconomics("b", 10_000, 1.0)]
    pol = FleetPolicy(devices, facs, PolicyParams(dwell_s=0))
    out = pol.decide(tick(T0, {"a": 50.0, "b": 50.0}), {d.device_id: "CURTAILED" for d in devices}, T0)
    assert sorted(d.device_id for d in out if d.to_mode == "MINING") == ["s21-0", "s21-2"]


def test_no_flapping_on_a_noisy_series() -> None:
    be = breakeven()
    rng = np.random.default_rng(3)
    hours = 24 * 14
    # Power wanders around the S21's break-even with +-8 % hourly noise.
    prices = be * (1 + 0.08 * rng.standard_normal(hours))
    counts = {}
    for name, params in (("greedy", PolicyParams.greedy()), ("hcp", PolicyParams(dwell_s=3 * 3600.0))):
        pol = FleetPolicy([s21(0)], [FacilityEconomics("a", 1e9, 1.0)], params)
        mode, switches = "MINING", 0
        for k in range(hours):
            at = T0 + timedelta(hours=k)
            for d in pol.decide(tick(at, float(prices[k])), {"s21-0": mode}, at):
                mode, switches = d.to_mode, switches + 1
        counts[name] = switches
    assert counts["greedy"] > 100  # it chases every wiggle
    assert counts["hcp"] <= 4


def test_decision_ids_are_deterministic_and_typed() -> None:
    be = breakeven()
    ids = []
    for _ in range(2):
        pol = policy([s21(0), s21(1)])
        out = pol.decide(tick(T0, be * 2), {"s21-0": "MINING", "s21-1": "MINING"}, T0)
        ids.append([d.decision_id for d in out])
        assert all(isinstance(d, Decision) and d.kind == "asic" and d.tick_at == T0 for d in out)
    assert ids[0] == ids[1] == [f"{T0.isoformat()}:s21-0", f"{T0.isoformat()}:s21-1"]
    assert out[0].to_dict()["reason"] == "CURTAIL_POWER_PRICE"


def test_dwell_state_survives_a_restart() -> None:
    be = breakeven()
    pol = policy([s21(0)], dwell_s=1800.0)
    modes = {"s21-0": "MINING"}
    assert pol.decide(tick(T0, be * 1.5), modes, T0) == []
    state = pol.state_dict()
    fresh = policy([s21(0)], dwell_s=1800.0)
    fresh.load_state_dict(state)
    at = T0 + timedelta(minutes=31)
    assert [d.to_mode for d in fresh.decide(tick(at, be * 1.5), modes, at)] == ["CURTAILED"]
    forgetful = policy([s21(0)], dwell_s=1800.0)
    assert forgetful.decide(tick(at, be * 1.5), modes, at) == []  # a fresh streak starts
    with pytest.raises(ValidationError):
        fresh.load_state_dict({"version": 99})


def test_unknown_devices_and_loosely_spelled_modes() -> None:
    pol = policy([s21(0), h100(0)])
    out = pol.decide(tick(T0, 50.0), {"s21-0": "mining"}, T0)  # h100-0 missing
    assert [(d.device_id, d.from_mode, d.reason) for d in out] == [
        ("h100-0", "UNKNOWN", DecisionReason.INITIAL)]
    array_path = pol.decide(tick(T0, 50.0), pol.mode_indices({"s21-0": "MINING", "h100-0": "IDLE"}), T0)
    assert [d.to_mode for d in array_path] == ["INFERENCE"]
    with pytest.raises(ValidationError):
        pol.decide(tick(T0, 50.0), {"s21-0": "SLEEPING"}, T0)


def test_from_fleet_spec_builds_the_whole_fleet() -> None:
    spec = parse_fleet_spec({
        "fleet": "t",
        "facilities": [{"name": "a", "location": "x", "capacity_mw": 1, "pue": 1.1,
                        "gpus": [{"id": "g", "model": "H100", "count": 3}],
                        "asics": [{"id": "s", "model": "S21", "count": 4}]}],
    })
    pol = FleetPolicy.from_fleet_spec(spec, PolicyParams(economics=EconomicsParams(gpu_utilization=0.5)))
    assert len(pol.device_ids) == 7
    out = pol.decide(tick(T0, 60.0), {}, T0)
    assert sorted({d.to_mode for d in out}) == ["INFERENCE", "MINING"]
    assert all(math.isfinite(d.expected_gain_usd_per_hour) for d in out)


def test_held_devices_keep_their_mode_and_the_cap_is_met_from_the_others() -> None:
    be = breakeven()
    devices = [s21(0), s21(1), h100(0), h100(1)]
    gpu_w = h100(0).active_w
    # Room for both GPUs and one ASIC: the cap is met by curtailing an ASIC, never a rental.
    pol = policy(devices, cap_w=3500 + 2 * gpu_w + 1)
    modes = {"s21-0": "MINING", "s21-1": "MINING", "h100-0": "RENTED", "h100-1": "INFERENCE"}
    out = pol.decide(tick(T0, be * 0.3), modes, T0, fixed={"h100-0", "h100-1"})
    assert {d.device_id for d in out} == {"s21-1"} or {d.device_id for d in out} == {"s21-0"}
    assert [(d.to_mode, d.reason) for d in out] == [("CURTAILED", DecisionReason.POWER_CAP)]
    # Without the holds the same tick would move a GPU (mining pays nothing on an H100 here).
    free = pol.decide(tick(T0, be * 0.3, gpu=0.0), modes | {"h100-0": "INFERENCE"}, T0)
    assert any(d.device_id.startswith("h100") for d in free)
    held = pol.decide(tick(T0, be * 0.3, gpu=0.0), modes, T0, fixed={"h100-0", "h100-1"})
    assert not any(d.device_id.startswith("h100") for d in held)


def test_held_gpus_over_the_cap_are_never_curtailed_by_the_policy(caplog: pytest.LogCaptureFixture
                                                                   ) -> None:
    from dataclasses import replace

    busy = [replace(h100(i), rental_occupancy=1.0) for i in range(2)]  # rented flat out
    devices = [*busy, s21(0)]
    pol = policy(devices, cap_w=h100(0).active_w)  # room for one rented GPU only
    modes = {"h100-0": "RENTED", "h100-1": "RENTED", "s21-0": "MINING"}
    with caplog.at_level("WARNING"):
        out = pol.decide(tick(T0, 10.0), modes, T0, fixed={"h100-0", "h100-1"})
    assert [(d.device_id, d.to_mode) for d in out] == [("s21-0", "CURTAILED")]
    assert "only an explicit preemption of a rental can meet it" in caplog.text
    # The policy names the fewest held GPUs whose stop meets the cap: one of the two.
    [p] = pol.last_preemptions
    assert p.device_id in {"h100-0", "h100-1"} and p.facility == "a" and p.draw_w == 700
    assert "power cap" in p.reason
    # Within the cap, nothing is preempted.
    roomy = policy(devices, cap_w=1e9)
    roomy.decide(tick(T0, 10.0), modes, T0, fixed={"h100-0", "h100-1"})
    assert roomy.last_preemptions == []
