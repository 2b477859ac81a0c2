"""The store's metrics history (the embedded default, where no Prometheus runs): what a GPU
actor's minute costs to write, and what the API's windows cost to read.

Fills a fresh store with ``--gpus`` GPUs of one facility: a day of minutes through
``SqlHistory.write_minutes`` (one minute of every GPU per transaction) and 30 days of hours.
Then:
- ``minute_write``: one GPU's ended minute written as its actor writes it (its own
  transaction: the minute, and its addition into the hour); baseline: the same row inserted
  alone, without the hour, in its own transaction.
- ``read_*``: the API's reads (``SqlHistory.history``), p50 over ``--rounds``; baseline: the
  same window of one GPU.

    python -m bench.history [--gpus 100] [--rounds 20] [--database-url URL]

Prints one JSON object per line (see bench/common.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.common import emit, note, percentile
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.observability.history import MinuteRow, Scope, SqlHistory, Window
from hcp.observability.history import models as m
from hcp.store import connect, migrate

B = "history"


def _row(gpu: int, minute: int) -> MinuteRow:
    w = 300.0 + (gpu * 7 + minute) % 40
    return MinuteRow(f"g{gpu}", "lab", minute, 12, 12 * w, w + 3, 12 * 65.0, 70.0, 12 * 0.8, 12 * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpus", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hcp-bench-history-"))
    engine = connect(args.database_url or f"sqlite:///{tmp / 'hcp.db'}")
    migrate(engine)
    FleetRepository(engine).sync_fleet(parse_fleet_spec({"fleet": "bench", "facilities": [{
        "name": "lab", "location": "bench", "capacity_mw": 10, "pue": 1.2,
        "gpus": [{"id": f"g{i}", "model": "H100"} for i in range(args.gpus)]}]}, "bench"))
    store = SqlHistory(engine)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = int((now - timedelta(days=1)).timestamp()) // 60
    last = int(now.timestamp()) // 60
    t0 = time.perf_counter()
    for minute in range(first, last):
        store.write_minutes([_row(g, minute) for g in range(args.gpus)])
    hours_first = int((now - timedelta(days=30)).timestamp()) // 3600
    with engine.begin() as c:
        c.execute(insert(m.DeviceHour), [
            {"device_id": f"g{g}", "hour": h, "facility": "lab", "samples": 720,
             "power_sum": 720 * 310.0, "power_max": 340.0, "temperature_sum": 720 * 65.0,
             "temperature_max": 70.0, "utilization_sum": 720 * 0.8, "hashrate_sum": 720 * 1e6}
            for g in range(args.gpus) for h in range(hours_first, first // 60)])
    note(f"filled {args.gpus} GPUs x {last - first} minutes and 30 days of hours "
         f"in {time.perf_counter() - t0:.1f} s ({engine.dialect.name})")

    def timed(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
        return percentile(out, 50)

    future = iter(range(last + 10, last + 10 + 10 * args.rounds))
    write = timed(lambda: store.write_minutes([_row(0, next(future))]), args.rounds)
    plain = iter(range(last + 10 + 10 * args.rounds, last + 10 + 20 * args.rounds))

    def bare() -> None:
        r = _row(1, next(plain))
        with engine.begin() as c:
            c.execute(insert(m.DeviceMinute).values(
                device_id=r.device_id, minute=r.minute, facility=r.facility, samples=r.samples,
                power_sum=r.power_sum, power_max=r.power_max, temperature_sum=r.temperature_sum,
                temperature_max=r.temperature_max, utilization_sum=r.utilization_sum,
                hashrate_sum=r.hashrate_sum))

    base = timed(bare, args.rounds)
    emit(B, "minute_write_p50", write, "ms", base, gpus=args.gpus, dialect=engine.dialect.name)
    for window in Window:
        one = timed(lambda w=window: store.history(Scope.DEVICE, "g0", w, now), args.rounds)
        fac = timed(lambda w=window: store.history(Scope.FACILITY, "lab", w, now), args.rounds)
        emit(B, f"read_facility_{window.value}_p50", fac, "ms", one, gpus=args.gpus,
             points=len(store.history(Scope.FACILITY, "lab", window, now).points),
             dialect=engine.dialect.name)
    engine.dispose()


if __name__ == "__main__":
    main()
