"""Decision-to-acknowledged latency of the optimizer broadcasting to every GPU actor of the local fleet.

Starts (or joins) Ray, launches the local fleet (``hcp/data/fleet.local.yaml``: simulated,
CPU-backed GPU actors with both contexts resident) on a private SQLite store, and measures:

- ``broadcast_ack_*``: per decision, from the moment the broadcast starts (every ``switch``
  sent at once) to that GPU's acknowledgement of its committed switch, through the
  optimizer's own ``RayFleetPort``;
- ``step_*``: one whole ``OptimizerService.step`` (tick, decide, write decisions as issued,
  broadcast, wait for every ack, write outcomes) flipping every GPU;
- baseline: a plain no-op actor method round trip, measured in the same run.

    python -m bench.optimizer_broadcast [--broadcasts 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import emit, note, percentile

B = "optimizer_broadcast"
_FLIP = {"MINING": "INFERENCE", "INFERENCE": "MINING", "IDLE": "MINING", "CURTAILED": "MINING"}


class _FlipGpus:
    """A policy that moves every GPU to the other context at every tick (all-change broadcasts)."""

    def __init__(self, gpus: list[tuple[str, str]]) -> None:
        self._gpus = gpus

    def decide(self, tick: Any, current_modes: Mapping[str, str], now: datetime,
               fixed: Collection[str] = ()) -> list[Any]:
        from hcp.economics.policy.decision import Decision, DecisionReason

        return [Decision(Decision.make_id(tick.at, g), g, fac, "gpu", current_modes[g], _FLIP[current_modes[g]],
                         DecisionReason.BETTER_PROFIT, 0.0, tick.at) for g, fac in self._gpus]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        pass


def _noop_round_trips(n: int) -> list[float]:
    import ray

    @ray.remote(num_cpus=0)
    class Noop:
        def ping(self) -> None:
            return None

    h = Noop.remote()
    ray.get(h.ping.remote())
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        ray.get(h.ping.remote())
        out.append((time.perf_counter() - t0) * 1e3)
    ray.kill(h)
    return out


def run(broadcasts: int = 100) -> list[dict[str, Any]]:
    import ray

    from actors.fleet import launch_fleet, shutdown_fleet
    from actors.optimizer import RayFleetPort
    from actors.topology import prepare_store, start_cluster
    from hcp.config import DEFAULT_FLEET_SPEC, Settings
    from hcp.economics.market import MarketSimulator
    from hcp.economics.optimizer import OptimizerRepository, OptimizerService
    from hcp.economics.optimizer.economics import FleetProfit
    from hcp.economics.optimizer.types import ApplyOrder
    from hcp.fleet.spec import load_fleet_spec

    home = Path(tempfile.mkdtemp(prefix="hcp-bench-opt-", dir="/tmp"))
    settings = Settings(home=home, ray_namespace="hcp-bench-optimizer", ray_temp_dir=home / "ray",
                        log_level="WARNING")
    spec = load_fleet_spec(DEFAULT_FLEET_SPEC)
    repo = prepare_store(spec, settings)
    started = not ray.is_initialized()
    if started:
        start_cluster(settings, log_to_driver=False, record=False)
    lines: list[dict[str, Any]] = []
    handles = None
    try:
        noop = _noop_round_trips(max(200, 2 * broadcasts))
        n0, n99 = percentile(noop, 50), percentile(noop, 99)
        note("launching the local fleet (GPU actors load and warm both contexts)...")
        handles = launch_fleet(spec, settings)
        gpus = sorted(handles.gpus)
        extra = {"gpus": len(gpus), "fleet": spec.name, "gpu_backing": "simulated (CPU)"}
        port = RayFleetPort(handles.gpus, handles.facilities)
        modes = {g: ray.get(handles.gpus[g].status.remote()).mode for g in gpus}
        acks: list[float] = []
        for i in range(broadcasts + 1):
            orders = []
            for g in gpus:
                modes[g] = _FLIP[modes[g]]
                orders.append(ApplyOrder(f"bench-{i}:{g}", g, spec.device(g).facility, "gpu", modes[g], "bench"))
            results = port.apply(orders, timeout_s=30.0)
            bad = [r for r in results if not r.ok]
            if bad:
                raise RuntimeError(f"broadcast {i} failed: {bad[0].error}")
            if i:  # the first broadcast pays one-time costs (imports, connections)
                acks.extend(r.latency_ms for r in results if r.latency_ms is not None)
        lines.append(emit(B, "broadcast_ack_p50_ms", percentile(acks, 50), "ms", baseline=n0,
                          baseline_name="noop_actor_round_trip_p50", n=len(acks), **extra))
        lines.append(emit(B, "broadcast_ack_p99_ms", percentile(acks, 99), "ms", baseline=n99,
                          baseline_name="noop_actor_round_trip_p99", n=len(acks), **extra))

        svc = OptimizerService(
            feed=MarketSimulator(1, [f.name for f in spec.facilities]),
            policy=_FlipGpus([(g, spec.device(g).facility) for g in gpus]),
            profit=FleetProfit.from_fleet_spec(spec), port=port, repo=OptimizerRepository(repo.engine),
            apply_timeout_s=30.0)
        steps: list[float] = []
        for i in range(broadcasts + 1):
            t0 = time.perf_counter()
            r = svc.step()
            dt = (time.perf_counter() - t0) * 1e3
            if r.skipped or len(r.outcomes) != len(gpus) or not all(o.status.applied for o in r.outcomes):
                raise RuntimeError(f"step {i} did not apply every decision: {r.to_dict()}")
            if i:
                steps.append(dt)
            time.sleep(0.002)  # distinct tick times: one tick per step
        lines.append(emit(B, "step_p50_ms", percentile(steps, 50), "ms", baseline=n0,
                          baseline_name="noop_actor_round_trip_p50", n=len(steps), **extra))
        lines.append(emit(B, "step_p99_ms", percentile(steps, 99), "ms", baseline=n99,
                          baseline_name="noop_actor_round_trip_p99", n=len(steps), **extra))
        lines.append(emit(B, "noop_actor_round_trip_p50_ms", n0, "ms", n=len(noop)))
    finally:
        if handles is not None:
            shutdown_fleet(handles)
        if started:
            ray.shutdown()
        repo.engine.dispose()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broadcasts", type=int, default=100, help="broadcasts (and optimizer steps) measured")
    run(ap.parse_args().broadcasts)


if __name__ == "__main__":
    main()
