"""Resident switch vs cold switch on the same machine, same run.

Resident: both contexts stay loaded; a switch pauses mining at a batch boundary, snapshots
the cursor, swaps the active context and health-checks it (hcp.fleet.worker.GpuWorker).
Cold: what a platform without resident contexts does: unload the active context, load the
other from disk and warm it before it can serve.

    python -m bench.switch [--switches 200] [--cold-switches 200] [--cpu-share 1.0]

Prints one JSON object per line (see bench/common.py).
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from bench.common import emit, note, percentile
from hcp.config import Settings
from hcp.fleet.builder import build_gpu_worker
from hcp.fleet.modes import GpuMode
from hcp.fleet.spec import GpuSpec
from hcp.inference import create_model
from hcp.mining import (
    MiningContext,
    cuda_available,
    load_sample_headers,
    local_job_template,
    make_backend,
)

B = "switch"


def _spec(on_cuda: bool) -> GpuSpec:
    return GpuSpec(id="bench-gpu-0", facility="bench", model="H100", memory_gb=80, power_w=700,
                   idle_w=70, device_index=0 if on_cuda else None)


def resident(n: int, cpu_share: float, settings: Settings) -> dict[str, list[float]]:
    on_cuda = cuda_available()
    s = settings.with_(mining_cpu_share=cpu_share)
    worker = build_gpu_worker(_spec(on_cuda), s, cuda_ordinal=0 if on_cuda else None,
                              nvml_index=0 if on_cuda else None)
    worker.start(GpuMode.MINING)
    rng = random.Random(7)
    out: dict[str, list[float]] = {"to_inference": [], "to_mining": [], "first_inference": [],
                                   "pause": []}
    try:
        time.sleep(0.5)
        for _ in range(n):
            # Let mining run a random while, so switches land at arbitrary points of a batch.
            time.sleep(rng.uniform(0.005, 0.03))
            t0 = time.perf_counter()
            r = worker.switch(GpuMode.INFERENCE, "bench")
            worker.probe_inference_ms()
            out["first_inference"].append((time.perf_counter() - t0) * 1e3)
            out["to_inference"].append(r.total_ms)
            out["pause"].append(r.phases.pause_ms)
            time.sleep(rng.uniform(0.002, 0.01))
            r = worker.switch(GpuMode.MINING, "bench")
            out["to_mining"].append(r.total_ms)
        hashes = worker.status().hashes_done
    finally:
        worker.stop()
    note(f"resident: {n} round trips, mining did {hashes:,} hashes meanwhile")
    return out


def cold(n: int, settings: Settings) -> dict[str, list[float]]:
    """Unload-then-load switches: the baseline hcp's resident design is measured against."""
    on_cuda = cuda_available()
    device = "cuda:0" if on_cuda else "cpu"
    tip = load_sample_headers()[-1]
    template = local_job_template(tip, job_id="bench-cold", now_unix=int(time.time()))
    batch = settings.fleet.mining_batch_nonces_gpu if on_cuda else settings.fleet.mining_batch_nonces
    backend_name = "torch-cuda" if on_cuda else "numpy"
    out: dict[str, list[float]] = {"to_inference": [], "to_mining": []}
    mining = MiningContext(make_backend(backend_name), template, "bench-cold", settings.fleet.share_difficulty, batch)
    mining.backend.warm()
    model = None
    for i in range(n + 1):  # the first round trip only pays one-time imports: not counted
        mining.mine_batch()
        t0 = time.perf_counter()
        state = mining.snapshot()
        del mining
        gc.collect()
        model = create_model(settings.fleet.inference_model, device=device)
        model.load()
        model.warm()
        ok = model.health_check()
        if i:
            out["to_inference"].append((time.perf_counter() - t0) * 1e3)
        assert ok
        t0 = time.perf_counter()
        model.unload()
        model = None
        gc.collect()
        mining = MiningContext(make_backend(backend_name), template, "bench-cold", settings.fleet.share_difficulty, batch)
        mining.restore(state)
        mining.backend.warm()
        ok = mining.health_check()
        if i:
            out["to_mining"].append((time.perf_counter() - t0) * 1e3)
        assert ok
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=200, help="resident round trips (each way)")
    ap.add_argument("--cold-switches", type=int, default=200, help="cold round trips (each way)")
    ap.add_argument("--cpu-share", type=float, nargs="*", default=[1.0, 0.2],
                    help="mining duty cycles to measure the resident switch under")
    ap.add_argument("--hashrate-seconds", type=float, default=3.0)
    args = ap.parse_args()
    settings = Settings()
    device = "cuda" if cuda_available() else "cpu"
    note(f"device: {device}; inference model {settings.fleet.inference_model}")

    c = cold(args.cold_switches, settings)
    cold_all = c["to_inference"] + c["to_mining"]
    cold_p50, cold_p99 = percentile(cold_all, 50), percentile(cold_all, 99)
    emit(B, "cold_switch_p50_ms", cold_p50, "ms", device=device, n=len(cold_all))
    emit(B, "cold_switch_p99_ms", cold_p99, "ms", device=device, n=len(cold_all))
    for direction in ("to_inference", "to_mining"):
        emit(B, f"cold_{direction}_p50_ms", percentile(c[direction], 50), "ms", device=device)

    for share in args.cpu_share:
        r = resident(args.switches, share, settings)
        both = r["to_inference"] + r["to_mining"]
        tag = f"cpu_share={share}"
        for direction in ("to_inference", "to_mining"):
            for q in (50, 99):
                emit(B, f"resident_{direction}_p{q}_ms", percentile(r[direction], q), "ms",
                     baseline=percentile(c[direction], q), device=device, mining=tag, n=len(r[direction]))
        p50, p99 = percentile(both, 50), percentile(both, 99)
        emit(B, "resident_switch_p50_ms", p50, "ms", baseline=cold_p50, device=device, mining=tag, n=len(both))
        emit(B, "resident_switch_p99_ms", p99, "ms", baseline=cold_p99, device=device, mining=tag, n=len(both))
        emit(B, "cold_over_resident_p50", cold_p50 / p50, "x", device=device, mining=tag)
        emit(B, "pause_p99_ms", percentile(r["pause"], 99), "ms", device=device, mining=tag)
        emit(B, "switch_plus_first_inference_p99_ms", percentile(r["first_inference"], 99), "ms",
             baseline=percentile(c["to_inference"], 99), device=device, mining=tag)

    from bench.mining import measure_hashrates

    for line in measure_hashrates(args.hashrate_seconds):
        emit(B, line["metric"], line["value"], line["unit"], baseline=line["baseline"],
             **{k: v for k, v in line.items() if k not in ("bench", "metric", "value", "unit", "baseline", "ratio")})


if __name__ == "__main__":
    main()
