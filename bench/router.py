"""Router admission throughput: batched durable admission vs one row per transaction, same run.

core: the pure router (hcp.workloads.router.WorkloadRouter) validates and queues each
submission and writes them in group commits (one transaction per batch; rows and their
``events`` in executemany). baseline: the naive path, one INSERT transaction per submission. no_store: validation and
queueing alone (the in-memory ceiling of the admission path).
actor: the same through the Ray router actor (each ``submit`` returns only once committed;
concurrent calls share a commit), also against a no-op call of the same actor (Ray's own cost
per call), through ``submit_many``, and as the API ingress calls it: 500 concurrent
submissions sharing ``submit_batch`` calls (natural batching, ``hcp.asyncbatch``).

    python -m bench.router [--n 20000] [--batch 1000] [--baseline-n 2000] [--no-actor]
                           [--database-url URL]   (default: a fresh SQLite file)

Prints one JSON object per line (see bench/common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import emit, note
from hcp.store import connect, migrate
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import WorkloadRepository, workload_event
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.types import Workload, WorkloadState, WorkloadType

B = "router"


def _spec(i: int) -> dict[str, Any]:
    return {"type": ("inference", "embedding", "training", "batch")[i % 4], "priority": 1 + i % 10,
            "requirements": {"min_memory_gb": 16} if i % 3 == 0 else {}, "duration_seconds": 60}


def _repo(url: str) -> WorkloadRepository:
    engine = connect(url)
    migrate(engine)
    return WorkloadRepository(engine)


def core_rate(url: str, n: int, batch: int) -> float:
    """Admissions/s of the pure router, flushing durable batches of ``batch`` submissions."""
    r = WorkloadRouter(_repo(url), PriceTable.of({}, 0))
    r.resume()
    specs = [_spec(i) for i in range(n)]
    t0 = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        r.admit(f"owner-{i % 50}", spec)
        if i % batch == 0:
            r.flush()
    r.flush()
    return n / (time.perf_counter() - t0)


def admit_only_rate(n: int) -> float:
    """Admissions/s of validation + queueing + outbox alone (no store): the in-memory ceiling."""
    r = WorkloadRouter(None, PriceTable.of({}, 0))
    specs = [_spec(i) for i in range(n)]
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        r.admit(f"owner-{i % 50}", spec)
    return n / (time.perf_counter() - t0)


def baseline_rate(url: str, n: int) -> float:
    """One transaction per submission (validated the same way, row + event)."""
    from hcp.workloads.router import parse_spec

    repo = _repo(url)
    seq = itertools.count(repo.max_seq() + 1)
    t0 = time.perf_counter()
    for i in range(n):
        s = parse_spec(_spec(i))
        w = Workload(id=str(uuid.uuid4()), owner=f"owner-{i % 50}", type=WorkloadType(s.type),
                     priority=s.priority, state=WorkloadState.QUEUED,
                     requirements=s.requirements.model_dump(exclude_none=True), sla={},
                     interruptible=s.interruptible, duration_seconds=s.duration_seconds,
                     created_at=_now(), seq=next(seq))
        repo.insert_one(w, workload_event(w))
    return n / (time.perf_counter() - t0)


def actor_rates(url: str, n: int, batch: int) -> dict[str, float]:
    import ray

    from actors.options import router_actor_options
    from actors.router import RouterActor
    from hcp.config import Settings

    ray_tmp = None
    if not ray.is_initialized():
        ray_tmp = tempfile.mkdtemp(prefix="hcp-rb-", dir="/tmp")
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, _temp_dir=ray_tmp)
    _repo(url)  # schema
    settings = Settings(database_url=url, ray_namespace=f"hcp-bench-{uuid.uuid4().hex[:6]}")
    opts = router_actor_options(settings) | {"get_if_exists": False, "max_restarts": 0}
    actor = RouterActor.options(**opts).remote(settings, {})
    try:
        ray.get(actor.ready.remote())
        queued0 = ray.get(actor.stats.remote()).queued  # a shared database may hold some
        specs = [_spec(i) for i in range(n)]

        async def concurrent(call) -> float:  # type: ignore[no-untyped-def]
            # Many calls in flight, as a Serve ingress with many clients produces.
            t0 = time.perf_counter()
            window = 500
            for lo in range(0, n, window):
                await asyncio.gather(*(call(i) for i in range(lo, min(n, lo + window))))
            return n / (time.perf_counter() - t0)

        # Ray's own cost of one call on this machine: a no-op method of the same actor.
        noop = asyncio.run(concurrent(lambda i: actor.ready.remote()))
        single = asyncio.run(concurrent(lambda i: actor.submit.remote(f"owner-{i % 50}", specs[i])))
        t0 = time.perf_counter()
        refs = [actor.submit_many.remote("owner-b", specs[lo:lo + batch]) for lo in range(0, n, batch)]
        ray.get(refs)
        many = n / (time.perf_counter() - t0)

        async def through_ingress() -> float:
            # What the API ingress does: concurrent requests share submit_batch calls.
            from hcp.asyncbatch import NaturalBatcher

            async def send(items: list[Any]) -> list[Any]:
                return list(await actor.submit_batch.remote(items))

            batcher: NaturalBatcher[Any, Any] = NaturalBatcher(send)
            return await concurrent(lambda i: batcher.submit((f"owner-{i % 50}", specs[i], None)))

        batched = asyncio.run(through_ingress())
        stats = ray.get(actor.stats.remote())
        assert stats["queued"] == queued0 + 3 * n, stats  # every admission is there, once
        return {"submit": single, "submit_many": many, "noop": noop, "submit_batch": batched}
    finally:
        ray.kill(actor, no_restart=True)
        if ray_tmp is not None:
            ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)


def _load() -> dict[str, Any]:
    """Shared machines: the 1-minute load average says how contended the cores were."""
    return {"loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}


def _now():  # type: ignore[no-untyped-def]
    from hcp.clock import utcnow

    return utcnow()


def run(n: int = 20_000, batch: int = 1_000, baseline_n: int = 2_000, actor: bool = True,
        database_url: str | None = None) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="hcp-bench-router-"))

    def url(name: str) -> str:
        return database_url or f"sqlite:///{tmp / name}.db"

    backend = "postgresql" if database_url and database_url.startswith("postgres") else "sqlite"
    try:
        return _measure(url, backend, n, batch, baseline_n, actor)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(url, backend: str, n: int, batch: int, baseline_n: int,  # type: ignore[no-untyped-def]
             actor: bool) -> list[dict[str, Any]]:
    base = baseline_rate(url("baseline"), baseline_n)
    note(f"baseline one-row-per-transaction: {base:.0f}/s")
    out = [emit(B, "admissions_per_s_core", core_rate(url("core"), n, batch), "1/s", baseline=base,
                n=n, batch=batch, store=backend, baseline_kind="one_insert_per_transaction", **_load())]
    out.append(emit(B, "admissions_per_s_core_no_store", admit_only_rate(n), "1/s", baseline=base, n=n,
                    baseline_kind="one_insert_per_transaction", **_load()))
    if actor:
        rates = actor_rates(url("actor"), n, batch)
        out.append(emit(B, "admissions_per_s_actor_submit", rates["submit"], "1/s", baseline=base, n=n,
                        store=backend, baseline_kind="one_insert_per_transaction", in_flight=500, **_load()))
        out.append(emit(B, "actor_submit_vs_noop_call_per_s", rates["submit"], "1/s",
                        baseline=rates["noop"], n=n, store=backend,
                        baseline_kind="noop_actor_call_same_actor", in_flight=500, **_load()))
        out.append(emit(B, "admissions_per_s_actor_submit_many", rates["submit_many"], "1/s",
                        baseline=base, n=n, batch=batch, store=backend,
                        baseline_kind="one_insert_per_transaction", **_load()))
        out.append(emit(B, "admissions_per_s_ingress_batched", rates["submit_batch"], "1/s",
                        baseline=rates["submit"], n=n, store=backend,
                        baseline_kind="one_submit_call_per_admission", in_flight=500, **_load()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--baseline-n", type=int, default=2_000)
    ap.add_argument("--no-actor", action="store_true")
    ap.add_argument("--database-url", default=None)
    a = ap.parse_args()
    run(a.n, a.batch, a.baseline_n, not a.no_actor, a.database_url)


if __name__ == "__main__":
    main()
