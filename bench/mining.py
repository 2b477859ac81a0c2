"""Hashrate of each mining backend on a real mainnet header (``python -m bench.mining``).

Prints one JSON object per line: {"bench": "mining", "metric": "hashrate_<backend>",
"value": H/s, "unit": "H/s", "baseline": hashlib H/s, "ratio": value / baseline}.
Then, per CPU backend, how long one ``MiningContext.mine_batch()`` takes at the batch
size the platform mines with on CPU (``Settings.fleet.mining_batch_nonces``, or
``--batch-nonces``): metrics ``batch_ms_p50_<backend>`` / ``batch_ms_p99_<backend>``,
unit ms, baseline hashlib's, with ``batch_nonces`` and ``n`` (batches timed). A switch
waits for the batch in flight, so this is what mining adds to a switch.
``--sweep`` adds numpy and torch-cpu hashrates per batch size (metric
``hashrate_<backend>_batch<N>``), which is how the default batch sizes were chosen.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable, Iterable

from bench.common import percentile
from hcp.mining import (
    HashlibBackend,
    MiningBackend,
    MiningContext,
    NumbaBackend,
    NumpyBackend,
    TorchBackend,
    cuda_available,
    load_sample_headers,
    local_job_template,
    numba_available,
)

logger = logging.getLogger(__name__)


def _hashrate(backend: MiningBackend, seconds: float, chunk: int) -> float:
    """Hashes per second over consecutive nonce ranges of a real header at its real target."""
    tip = load_sample_headers()[-1]
    header80, target = tip.serialize(), tip.target()
    backend.warm()
    backend.search(header80, 0, chunk, target)  # first batch pays one-off costs
    done, start = 0, 1 << 20
    began = time.perf_counter()
    while True:
        backend.search(header80, start + done, chunk, target)
        done += chunk
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return done / elapsed


def _candidates() -> list[tuple[str, Callable[[], MiningBackend], int]]:
    """(metric suffix, factory, nonces per search call) for every backend this machine has."""
    found: list[tuple[str, Callable[[], MiningBackend], int]] = [
        ("numpy", NumpyBackend, 1 << 15),
        ("torch_cpu", lambda: TorchBackend(device="cpu"), 1 << 17),
    ]
    if numba_available():
        found.insert(1, ("numba", NumbaBackend, 1 << 16))
    cores = os.cpu_count() or 1
    if cores > 1:
        threads = min(cores, 8)
        found.insert(
            1, (f"numpy_{threads}threads", lambda: NumpyBackend(threads=threads), threads << 15)
        )
    if cuda_available():
        found.append(("torch_cuda", lambda: TorchBackend(device="cuda"), 1 << 24))
    return found


def _line(
    metric: str, value: float, baseline: float, unit: str = "H/s", digits: int = 1, **extra: object
) -> dict[str, object]:
    return {
        "bench": "mining",
        "metric": metric,
        "value": round(value, digits),
        "unit": unit,
        "baseline": round(baseline, digits),
        "ratio": round(value / baseline, 3) if baseline else None,
        **extra,
    }


def _batch_seconds(backend: MiningBackend, batch_nonces: int, seconds: float) -> list[float]:
    """Wall time of consecutive ``mine_batch()`` calls on a local job at the platform's
    share difficulty: at least 100 batches and ``seconds``."""
    from hcp.config import Settings  # pydantic settings: only when this part runs

    tip = load_sample_headers()[-1]
    template = local_job_template(tip, "bench-batch", tip.time + 600)
    ctx = MiningContext(backend, template, "bench-batch", Settings().fleet.share_difficulty, batch_nonces)
    ctx.warm()
    ctx.mine_batch()  # first batch pays one-off costs
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < 100 or time.perf_counter() - began < seconds:
        t0 = time.perf_counter()
        ctx.mine_batch()
        times.append(time.perf_counter() - t0)
    return times


def measure_batch_ms(
    seconds_per_backend: float = 2.0, batch_nonces: int | None = None
) -> list[dict[str, object]]:
    """p50 / p99 of one mining batch per CPU backend at the platform's CPU batch size."""
    if batch_nonces is None:
        from hcp.config import Settings

        batch_nonces = Settings().fleet.mining_batch_nonces
    backends: list[tuple[str, Callable[[], MiningBackend]]] = [
        ("hashlib", HashlibBackend),
        ("numpy", NumpyBackend),
        ("torch_cpu", lambda: TorchBackend(device="cpu")),
    ]
    if numba_available():
        backends.insert(2, ("numba", NumbaBackend))
    rows: list[dict[str, object]] = []
    base: dict[int, float] = {}
    for suffix, factory in backends:
        try:
            ms = [t * 1e3 for t in _batch_seconds(factory(), batch_nonces, seconds_per_backend)]
        except Exception:  # one broken backend should not hide the others' figures
            logger.exception("mining bench: batch timing of backend %s failed", suffix)
            continue
        for q in (50, 99):
            value = percentile(ms, q)
            base.setdefault(q, value)  # hashlib's, the first row
            rows.append(
                _line(
                    f"batch_ms_p{q}_{suffix}",
                    value,
                    base[q],
                    unit="ms",
                    digits=4,
                    batch_nonces=batch_nonces,
                    n=len(ms),
                )
            )
    return rows


def measure_hashrates(
    seconds_per_backend: float = 3.0, batch_nonces: int | None = None
) -> list[dict[str, object]]:
    """Hashlib (the baseline) first, then numpy, numba, torch-cpu and torch-cuda where
    present; then the batch-duration rows of ``measure_batch_ms``."""
    baseline = _hashrate(HashlibBackend(), seconds_per_backend, 20_000)
    rows = [_line("hashrate_hashlib", baseline, baseline)]
    for suffix, factory, chunk in _candidates():
        try:
            rate = _hashrate(factory(), seconds_per_backend, chunk)
        except Exception:  # one broken backend should not hide the others' figures
            logger.exception("mining bench: backend %s failed", suffix)
            continue
        rows.append(_line(f"hashrate_{suffix}", rate, baseline))
    rows.extend(measure_batch_ms(min(seconds_per_backend, 2.0), batch_nonces))
    return rows


def sweep_batch_sizes(
    seconds: float,
    baseline: float,
    sizes: Iterable[int] = (4096, 8192, 16384, 32768, 65536, 131072),
) -> list[dict[str, object]]:
    rows = []
    for size in sizes:
        for suffix, backend in (
            ("numpy", NumpyBackend(batch_size=size)),
            ("torch_cpu", TorchBackend(device="cpu", batch_size=size)),
        ):
            rate = _hashrate(backend, seconds, size)
            rows.append(_line(f"hashrate_{suffix}_batch{size}", rate, baseline))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per backend")
    parser.add_argument("--sweep", action="store_true", help="also sweep batch sizes")
    parser.add_argument(
        "--batch-nonces",
        type=int,
        default=None,
        help="batch size for the batch_ms rows (default: Settings.fleet.mining_batch_nonces)",
    )
    args = parser.parse_args()
    rows = measure_hashrates(args.seconds, args.batch_nonces)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.sweep:
        sweep_batch_sizes(args.seconds, float(rows[0]["value"]))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
