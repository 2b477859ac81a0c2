"""Decisions per second of the fleet policy for 100,000 devices (``python -m bench.optimizer``).

Prints one JSON object per line (bench.common.emit):
- ``fleet_decision_ms_p50`` / ``_p99``: one full-fleet ``FleetPolicy.decide`` (mode strings in,
  typed ``Decision`` objects out, power caps enforced), baseline the same rules as a
  per-device pure-Python loop measured in the same run (ratio < 1 is faster); target < 50 ms.
- ``decisions_per_s``: devices decided per second by the vectorized policy, baseline the loop's.
- ``fleet_decision_forecast_ms_p50``: the same with 36 h of published day-ahead prices.
Then runs ``bench.optimizer_broadcast.run()`` when that module exists (decision-to-acknowledged
latency of broadcasting to the local fleet's GPU actors).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.common import emit, note, percentile
from hcp.economics.devices import DeviceEconomics, FacilityEconomics
from hcp.economics.formulas import HASHES_PER_DIFFICULTY
from hcp.economics.market.tick import PriceTick
from hcp.economics.policy.fleet_policy import FleetPolicy
from hcp.economics.policy.params import PolicyParams

BENCH = "optimizer"
_GPU_MODELS = (("H100", 700, 80, 3.44), ("L40S", 350, 35, 1.09), ("A100", 400, 50, 2.2))
_ASIC_MODELS = (("S21", 200e12, 3500), ("S19 XP", 140e12, 3010))


def make_fleet(n: int, facilities: int, seed: int = 0) -> tuple[list[DeviceEconomics],
                                                                 list[FacilityEconomics]]:
    rng = np.random.default_rng(seed)
    facs = [FacilityEconomics(f"site-{k}", capacity_w=n / facilities * 2500.0, pue=1.1 + 0.05 * (k % 4))
            for k in range(facilities)]
    devices = []
    for i in range(n):
        fac = facs[i % facilities].name
        if rng.random() < 0.5:
            model, watts, idle, _ = _GPU_MODELS[i % len(_GPU_MODELS)]
            devices.append(DeviceEconomics(f"gpu-{i}", fac, "gpu", model, watts, idle, 4.3e6, 0.6, 60.0))
        else:
            model, hashrate, watts = _ASIC_MODELS[i % len(_ASIC_MODELS)]
            devices.append(DeviceEconomics(f"asic-{i}", fac, "asic", model, watts, 0.0, hashrate, 0.0, 600.0))
    return devices, facs


class TickWalk:
    """5-second ticks: prices random-walk from realistic 2022 levels, with rare power jumps."""

    def __init__(self, facilities: list[FacilityEconomics], seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.facilities = facilities
        self.power = {f.name: float(self.rng.uniform(150, 300)) for f in facilities}
        self.btc = 30_000.0

    def tick(self, at: datetime, forecast_hours: int = 0) -> PriceTick:
        rng = self.rng
        self.btc *= float(np.exp(0.0005 * rng.standard_normal()))
        for name in self.power:
            jump = 1.5 if rng.random() < 0.02 else 1.0
            self.power[name] = float(np.clip(self.power[name] * jump * np.exp(0.01 * rng.standard_normal()),
                                             20, 900))
        ahead = {f.name: tuple(rng.uniform(50, 450, forecast_hours).tolist()) for f in self.facilities}
        return PriceTick(at=at, btc_usd=self.btc, difficulty=28e12, block_subsidy_btc=6.25,
                         fees_per_block_btc=0.12, power_usd_per_mwh=dict(self.power),
                         gpu_usd_per_hour={m[0]: m[3] for m in _GPU_MODELS},
                         power_forecast_usd_per_mwh=ahead if forecast_hours else {})


def python_decide(devices: list[DeviceEconomics], facilities: dict[str, FacilityEconomics],
                  tick: PriceTick, modes: dict[str, str], params: PolicyParams) -> dict[str, str]:
    """The baseline: the same threshold, switching-cost and cap rules, one device at a time."""
    usd_per_hash = tick.block_reward_btc / (tick.difficulty * HASHES_PER_DIFFICULTY) * tick.btc_usd
    wanted: list[tuple[float, float, str, str, str]] = []  # (density, draw, facility, id, mode)
    for d in devices:
        fac = facilities[d.facility]
        price = tick.power_usd_per_mwh[d.facility] / 1e6 * fac.pue
        options = {"MINING": (d.hashrate_hs * 3600 * usd_per_hash, d.active_w)}
        if d.kind == "gpu":
            options["INFERENCE"] = (tick.gpu_usd_per_hour.get(d.model, 0.0) * d.utilization, d.inference_w)
            options["IDLE"] = (0.0, d.idle_w)
        else:
            options["CURTAILED"] = (0.0, 0.0)
        profit = {m: rev - w * price for m, (rev, w) in options.items()}
        best = max(profit, key=profit.__getitem__)
        cur = modes[d.device_id]
        gain = profit[best] - profit.get(cur, float("-inf"))
        ref = max(abs(profit[best]), abs(profit.get(cur, 0.0)))
        cost = d.switch_seconds / 3600 * max(options[best][0], 0.0)
        switch = best != cur and gain > params.threshold_pct / 100 * ref and gain >= cost
        mode = best if switch else cur
        draw = options[mode][1] * fac.pue if mode in options else 0.0
        density = profit[mode] / draw if draw > 0 else float("inf")
        wanted.append((density, draw, d.facility, d.device_id, mode))
    wanted.sort(key=lambda w: (w[2], -w[0]))
    out: dict[str, str] = {}
    used: dict[str, float] = {}
    full: set[str] = set()
    for _density, draw, fac_name, device_id, mode in wanted:
        if draw > 0 and (fac_name in full or used.get(fac_name, 0.0) + draw > facilities[fac_name].capacity_w):
            full.add(fac_name)
            mode = "CURTAILED"
            draw = 0.0
        used[fac_name] = used.get(fac_name, 0.0) + draw
        if mode != modes[device_id]:
            out[device_id] = mode
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--facilities", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--baseline-rounds", type=int, default=3)
    args = ap.parse_args()

    devices, facs = make_fleet(args.devices, args.facilities)
    fac_by_name = {f.name: f for f in facs}
    params = PolicyParams(dwell_s=0.0)  # no dwell wait: every round may switch devices
    policy = FleetPolicy(devices, facs, params)
    walk = TickWalk(facs)
    t0 = datetime(2022, 6, 1, tzinfo=UTC)
    modes = {d.device_id: ("INFERENCE" if d.kind == "gpu" else "MINING") for d in devices}
    state = policy.mode_indices(modes)
    for d in policy.decide(walk.tick(t0), state, t0):  # warm-up, and settle into steady state
        modes[d.device_id] = d.to_mode
    state = policy.mode_indices(modes)

    def timed(forecast_hours: int, offset: int) -> tuple[list[float], list[float], int]:
        """(ms with the mode array, ms with the mode dict, decisions made)."""
        arr_ms, dict_ms, changes = [], [], 0
        nonlocal state
        for r in range(args.rounds):
            at = t0 + timedelta(seconds=5 * (offset + r + 1))
            tick = walk.tick(at, forecast_hours)
            snapshot = policy.state_dict()
            began = time.perf_counter()
            policy.decide(tick, modes, at)
            dict_ms.append((time.perf_counter() - began) * 1e3)
            policy.load_state_dict(snapshot)  # the same decision again, from the array path
            began = time.perf_counter()
            decisions = policy.decide(tick, state, at)
            arr_ms.append((time.perf_counter() - began) * 1e3)
            for d in decisions:
                modes[d.device_id] = d.to_mode
            state = policy.mode_indices(modes)
            changes += len(decisions)
        return arr_ms, dict_ms, changes

    fast, via_dict, changes = timed(0, 0)
    base = []
    for r in range(args.baseline_rounds):
        at = t0 + timedelta(seconds=5 * (10_000 + r))
        tick = walk.tick(at)
        began = time.perf_counter()
        python_decide(devices, fac_by_name, tick, modes, params)
        base.append((time.perf_counter() - began) * 1e3)
    fc, _, _ = timed(36, 20_000)
    n = args.devices
    b50 = percentile(base, 50)
    extra = {"devices": n, "facilities": args.facilities, "rounds": args.rounds,
             "baseline_rounds": args.baseline_rounds, "target_ms": 50,
             "mean_decisions_per_round": round(changes / args.rounds, 1)}
    emit(BENCH, "fleet_decision_ms_p50", percentile(fast, 50), "ms", b50, **extra)
    emit(BENCH, "fleet_decision_ms_p99", percentile(fast, 99), "ms", percentile(base, 99), **extra)
    emit(BENCH, "decisions_per_s", n / (percentile(fast, 50) / 1e3), "devices/s", n / (b50 / 1e3), **extra)
    emit(BENCH, "fleet_decision_from_dict_ms_p50", percentile(via_dict, 50), "ms", b50,
         note="modes passed as {device_id: mode} strings", **extra)
    emit(BENCH, "fleet_decision_forecast_ms_p50", percentile(fc, 50), "ms", b50,
         forecast_hours=36, **extra)

    if importlib.util.find_spec("bench.optimizer_broadcast") is not None:
        from bench import optimizer_broadcast

        optimizer_broadcast.run()
    else:
        note("bench.optimizer_broadcast not present: broadcast latency not measured")


if __name__ == "__main__":
    main()
