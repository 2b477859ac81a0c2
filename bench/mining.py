"""Hashrate of each mining backend on a real mainnet header (``python -m bench.mining``).

Prints one JSON object per line: {"bench": "mining", "metric": "hashrate_<backend>",
"value": H/s, "unit": "H/s", "baseline": hashlib H/s, "ratio": value / baseline}.
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

from hcp.mining import (
    HashlibBackend,
    MiningBackend,
    NumpyBackend,
    TorchBackend,
    cuda_available,
    load_sample_headers,
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
    cores = os.cpu_count() or 1
    if cores > 1:
        threads = min(cores, 8)
        found.insert(
            1, (f"numpy_{threads}threads", lambda: NumpyBackend(threads=threads), threads << 15)
        )
    if cuda_available():
        found.append(("torch_cuda", lambda: TorchBackend(device="cuda"), 1 << 24))
    return found


def _line(metric: str, value: float, baseline: float) -> dict[str, object]:
    return {
        "bench": "mining",
        "metric": metric,
        "value": round(value, 1),
        "unit": "H/s",
        "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 3) if baseline else None,
    }


def measure_hashrates(seconds_per_backend: float = 3.0) -> list[dict[str, object]]:
    """Hashlib (the baseline) first, then numpy, torch-cpu and torch-cuda where present."""
    baseline = _hashrate(HashlibBackend(), seconds_per_backend, 20_000)
    rows = [_line("hashrate_hashlib", baseline, baseline)]
    for suffix, factory, chunk in _candidates():
        try:
            rate = _hashrate(factory(), seconds_per_backend, chunk)
        except Exception:  # one broken backend should not hide the others' figures
            logger.exception("mining bench: backend %s failed", suffix)
            continue
        rows.append(_line(f"hashrate_{suffix}", rate, baseline))
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
    args = parser.parse_args()
    rows = measure_hashrates(args.seconds)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.sweep:
        sweep_batch_sizes(args.seconds, float(rows[0]["value"]))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
