"""What a GPU hold costs next to a plain committed switch, on the same device, same run.

A rental enters RENTED through the GPU's hold (``GpuDevice.hold``) and leaves it through
``release``; a router workload on a GPU already in INFERENCE takes a hold without a mode
change. The baseline is the plain committed switch the optimizer makes (MINING <-> INFERENCE):
both pause mining at a batch boundary and commit to the same store (SQLite here).

    python -m bench.holds [--rounds 200]

Prints one JSON object per line (see bench/common.py).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from bench.common import emit, note, percentile
from hcp.config import Settings
from hcp.fleet.builder import build_gpu_worker
from hcp.fleet.device import GpuDevice
from hcp.fleet.holds import Hold
from hcp.fleet.modes import GpuMode
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.store import connect, migrate

B = "holds"
_SPEC = {"fleet": "bench", "facilities": [{"name": "bench", "location": "x", "capacity_mw": 1,
                                           "pue": 1.1, "gpus": [{"id": "bench-gpu-0", "model": "H100"}]}]}


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def run(rounds: int, home: Path) -> dict[str, list[float]]:
    spec = parse_fleet_spec(_SPEC, "bench")
    settings = Settings(home=home, mining_cpu_share=1.0)
    repo = FleetRepository(connect(f"sqlite:///{home / 'bench.db'}"))
    migrate(repo.engine)
    repo.sync_fleet(spec)
    dev = GpuDevice(build_gpu_worker(spec.gpus()[0], settings), repo, "bench")
    dev.start()
    dev.switch(GpuMode.MINING, "bench")
    rng = random.Random(11)
    out: dict[str, list[float]] = {k: [] for k in (
        "switch_to_inference", "switch_to_mining", "hold_rented", "release_rented",
        "hold_in_place", "release_in_place", "noop_switch")}
    try:
        time.sleep(0.5)
        for i in range(rounds):
            time.sleep(rng.uniform(0.005, 0.02))  # land at arbitrary points of a mining batch
            out["switch_to_inference"].append(_timed(lambda: dev.switch(GpuMode.INFERENCE, "b")))
            out["switch_to_mining"].append(_timed(lambda: dev.switch(GpuMode.MINING, "b")))
            time.sleep(rng.uniform(0.005, 0.02))
            job = Hold.job(f"job-{i}")
            out["hold_rented"].append(_timed(lambda: dev.hold(job, "bench rental")))
            out["release_rented"].append(_timed(lambda: dev.release(job)))
            dev.switch(GpuMode.INFERENCE, "b")
            out["noop_switch"].append(_timed(lambda: dev.switch(GpuMode.INFERENCE, "b")))
            w = Hold.workload(f"w-{i}")
            out["hold_in_place"].append(_timed(lambda: dev.hold(w, "bench workload")))
            out["release_in_place"].append(_timed(lambda: dev.release(w)))
            dev.switch(GpuMode.MINING, "b")
    finally:
        dev.stop()
    note(f"{rounds} rounds on one device; SQLite store under {home}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.rounds, Path(tmp))
    for q in (50, 99):
        base_in = percentile(r["switch_to_inference"], q)
        base_out = percentile(r["switch_to_mining"], q)
        emit(B, f"hold_rented_from_mining_p{q}_ms", percentile(r["hold_rented"], q), "ms",
             baseline=base_in)
        emit(B, f"release_rented_to_mining_p{q}_ms", percentile(r["release_rented"], q), "ms",
             baseline=base_out)
        emit(B, f"workload_hold_in_place_p{q}_ms", percentile(r["hold_in_place"], q), "ms",
             baseline=percentile(r["noop_switch"], q))
        emit(B, f"workload_release_in_place_p{q}_ms", percentile(r["release_in_place"], q), "ms",
             baseline=percentile(r["noop_switch"], q))


if __name__ == "__main__":
    main()
