"""Marketplace throughput and search latency (``python -m bench.marketplace``).

One JSON object per line:
- ``lifecycle_jobs_per_s`` per backend (``backend``: sql-sqlite, sql-postgresql = MarketplaceService
  over the SQL ledger; chain-pyevm, chain-anvil = the on-chain Marketplace contract via
  ``hcp.marketplace.chain.stack.run_lifecycle``; service+chain-escrow-pyevm = MarketplaceService with
  ChainEscrowBackend): create (escrow lock) -> accept -> start -> complete (release 98/2 + refund),
  one job at a time; baseline: the SQLite figure of the same run.
- ``search_ms_p50`` / ``search_ms_p99`` over 100,000 offers (filters: model, price range, min
  reputation, available; sorted by price; 50 per page) through the indexed SQL query; baseline:
  the same queries on the same rows without the search indexes. ``search_scan_ms_p50``: a
  Python full scan of rows already in memory, for scale.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bench.common import emit, note, percentile
from hcp.auth.tokens import Principal, Role
from hcp.config import Settings
from hcp.marketplace import models as m
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec, SearchQuery
from hcp.marketplace.service import MarketplaceService
from hcp.marketplace.sql_ledger import SqlEscrowBackend
from hcp.store.db import connect, migrate

BENCH = "marketplace"
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
MODELS = ["A100", "H100", "H200", "L4", "L40S", "RTX4090", "RTX3090", "V100"]
LOCATIONS = ["eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east"]


class _Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()


def _sql_lifecycle(url: str, n: int, home: Path, escrow: Any = None) -> float:
    """The service over SQL; ``escrow`` swaps in another ledger (the chain: HCP_MARKETPLACE_ESCROW_BACKEND=chain)."""
    engine = connect(url)
    migrate(engine)
    clock = _Clock()
    ledger = escrow or SqlEscrowBackend(engine)
    svc = MarketplaceService(engine, ledger, Settings(home=home), clock)
    prov, rent = Principal("prov", Role.PROVIDER), Principal("rent", Role.CUSTOMER)
    ledger.mint("rent", 10 * n * ONE_TOKEN, f"faucet-{uuid.uuid4().hex}")
    offer = svc.register_offer(prov, OfferSpec("A100", 8, 80, 500, 10 * ONE_TOKEN, "eu-west")).id
    t0 = time.perf_counter()
    for _ in range(n):
        job = svc.create_job(rent, offer, CID, 3600).id
        svc.accept(prov, job)
        svc.start(prov, job)
        clock.t += timedelta(seconds=2700)
        done = svc.complete(prov, job)
        assert done.settlement is not None and done.settlement.to_provider == 735 * ONE_TOKEN // 100
    rate = n / (time.perf_counter() - t0)
    if isinstance(ledger, SqlEscrowBackend):
        ledger.verify_books()
    assert ledger.total_supply() == sum(ledger.balance_of(a) for a in ledger.accounts()) + ledger.escrowed_total()
    engine.dispose()
    return rate


def _chain_lifecycle(settings: Settings, n: int) -> float:
    from hcp.marketplace.chain.stack import open_chain, run_lifecycle

    stack = open_chain(settings)
    stack.escrow.mint("renter", 10 * (n + 2) * ONE_TOKEN, "faucet")
    rid = stack.market.register_resource("prov", "RTX4090", 16, 64, 500, 10 * ONE_TOKEN)
    run_lifecycle(stack, "warmup", "renter", rid, "prov", 3600, 2700)
    t0 = time.perf_counter()
    for i in range(n):
        run_lifecycle(stack, f"job-{i}", "renter", rid, "prov", estimated_seconds=3600, actual_seconds=2700)
    rate = n / (time.perf_counter() - t0)
    e = stack.escrow
    assert e.total_supply() == sum(e.balance_of(a) for a in e.accounts()) + e.escrowed_total()
    return rate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _anvil(home: Path, n: int) -> float | None:
    exe = Path("node_modules/.bin/anvil")
    if not exe.exists():
        note("anvil not installed (npm ci): chain-anvil skipped")
        return None
    port = _free_port()
    proc = subprocess.Popen([str(exe), "--port", str(port), "--silent"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        import httpx

        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                           timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        return _chain_lifecycle(Settings(home=home, chain_rpc_url=url,
                                         chain_wallet_seed="bench-seed-0123456789abcdef"), n)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _offers(n: int, rng: random.Random) -> list[dict[str, Any]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "provider": f"prov-{rng.randrange(5000)}",
             "gpu_model": rng.choice(MODELS), "vcpu": rng.choice([4, 8, 16, 32]),
             "memory_gb": rng.choice([16, 24, 48, 80, 141]), "storage_gb": rng.choice([100, 500, 2000]),
             "price_per_hour": rng.randrange(ONE_TOKEN // 10, 50 * ONE_TOKEN),
             "location": rng.choice(LOCATIONS), "available": rng.random() < 0.8,
             "reputation": rng.randrange(0, 1001), "created_at": t0 + timedelta(seconds=i)}
            for i in range(n)]


def _queries(k: int, rng: random.Random) -> list[SearchQuery]:
    out = []
    for _ in range(k):
        lo = rng.randrange(ONE_TOKEN // 10, 40 * ONE_TOKEN)
        out.append(SearchQuery(gpu_model=rng.choice(MODELS), min_price=lo,
                               max_price=lo + rng.randrange(ONE_TOKEN, 20 * ONE_TOKEN),
                               min_reputation=rng.choice([0, 500, 800, 900]), available_only=True,
                               limit=50))
    return out


def _time_queries(svc: MarketplaceService, queries: list[SearchQuery]) -> tuple[list[float], list[list[str]]]:
    ms, results = [], []
    for q in queries:
        t0 = time.perf_counter()
        page = svc.search(q)
        ms.append((time.perf_counter() - t0) * 1000)
        results.append([o.id for o in page.items])
    return ms, results


def _search(n_offers: int, n_queries: int, workdir: Path) -> None:
    rng = random.Random(42)
    rows = _offers(n_offers, rng)
    indexed = workdir / "indexed.db"
    engine = connect(f"sqlite:///{indexed}")
    migrate(engine)
    with engine.begin() as c:
        for i in range(0, len(rows), 5000):
            c.execute(insert(m.Offer.__table__), rows[i:i + 5000])
        c.execute(text("ANALYZE"))
    engine.dispose()
    plain = workdir / "plain.db"
    shutil.copy(indexed, plain)
    p_engine = connect(f"sqlite:///{plain}")
    with p_engine.begin() as c:
        for ix in ("ix_mk_offers_price", "ix_mk_offers_model_price", "ix_mk_offers_reputation",
                   "ix_mk_offers_location"):
            c.execute(text(f"DROP INDEX {ix}"))
    engine = connect(f"sqlite:///{indexed}")
    settings = Settings(home=workdir)
    fast = MarketplaceService(engine, SqlEscrowBackend(engine), settings)
    slow = MarketplaceService(p_engine, SqlEscrowBackend(p_engine), settings)
    queries = _queries(n_queries, rng)
    _time_queries(fast, queries[:10])
    _time_queries(slow, queries[:10])
    fast_ms, fast_res = _time_queries(fast, queries)
    slow_ms, slow_res = _time_queries(slow, queries)
    assert fast_res == slow_res, "indexed and unindexed queries disagree"
    with engine.connect() as c:
        plan = c.execute(text("EXPLAIN QUERY PLAN SELECT id FROM mk_offers WHERE available IS 1 AND "
                              "gpu_model = 'A100' AND price_per_hour >= '1' AND price_per_hour <= '9' "
                              "AND reputation >= 5 ORDER BY price_per_hour, id LIMIT 51")).all()
    note(f"query plan: {[r[-1] for r in plan]}")
    # In-memory full scan, for scale (rows already decoded; no database at all).
    scan_ms = []
    for q in queries:
        t0 = time.perf_counter()
        hits = sorted((r for r in rows if r["available"] and r["gpu_model"] == q.gpu_model
                       and q.min_price <= r["price_per_hour"] <= q.max_price  # type: ignore[operator]
                       and r["reputation"] >= q.min_reputation), key=lambda r: (r["price_per_hour"], r["id"]))
        scan_ms.append((time.perf_counter() - t0) * 1000)
        assert [r["id"] for r in hits[:50]] == fast_res[len(scan_ms) - 1]
    extra = {"offers": n_offers, "queries": n_queries, "db": "sqlite"}
    emit(BENCH, "search_ms_p50", percentile(fast_ms, 50), "ms", percentile(slow_ms, 50), **extra)
    emit(BENCH, "search_ms_p99", percentile(fast_ms, 99), "ms", percentile(slow_ms, 99), **extra)
    emit(BENCH, "search_scan_ms_p50", percentile(scan_ms, 50), "ms", percentile(fast_ms, 50), **extra)
    engine.dispose()
    p_engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=200, help="lifecycles per SQL backend")
    ap.add_argument("--chain-jobs", type=int, default=20, help="lifecycles per chain backend")
    ap.add_argument("--offers", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--postgres", default=os.environ.get("HCP_BENCH_PG_URL"),
                    help="PostgreSQL URL of an empty database (default: a fresh one on localhost)")
    ap.add_argument("--skip-chain", action="store_true")
    ap.add_argument("--skip-anvil", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hcp-bench-mk-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        base = _sql_lifecycle(f"sqlite:///{work / 'life.db'}", args.jobs, work)
        emit(BENCH, "lifecycle_jobs_per_s", base, "jobs/s", base, backend="sql-sqlite", n=args.jobs)
        try:
            if args.postgres:
                pg = _sql_lifecycle(args.postgres, args.jobs, work)
            else:
                from tests.conftest import fresh_postgres_database

                with fresh_postgres_database() as url:
                    pg = _sql_lifecycle(url, args.jobs, work)
            emit(BENCH, "lifecycle_jobs_per_s", pg, "jobs/s", base, backend="sql-postgresql", n=args.jobs)
        except Exception as exc:  # noqa: BLE001 (a bench without PostgreSQL still reports the rest)
            note(f"postgresql lifecycle skipped: {exc}")
        if not args.skip_chain:
            rate = _chain_lifecycle(Settings(home=work / "evm", chain_wallet_seed="bench-seed-0123456789abcdef"),
                                    args.chain_jobs)
            emit(BENCH, "lifecycle_jobs_per_s", rate, "jobs/s", base, backend="chain-pyevm", n=args.chain_jobs)
            from hcp.marketplace.chain.stack import open_chain

            hybrid = open_chain(Settings(home=work / "evm2", chain_wallet_seed="bench-seed-0123456789abcdef"))
            rate_h = _sql_lifecycle(f"sqlite:///{work / 'hybrid.db'}", args.chain_jobs, work, hybrid.escrow)
            emit(BENCH, "lifecycle_jobs_per_s", rate_h, "jobs/s", base, backend="service+chain-escrow-pyevm",
                 n=args.chain_jobs)
            if not args.skip_anvil:
                rate_a = _anvil(work / "anvil", args.chain_jobs)
                if rate_a is not None:
                    emit(BENCH, "lifecycle_jobs_per_s", rate_a, "jobs/s", base, backend="chain-anvil",
                         n=args.chain_jobs)
        _search(args.offers, args.queries, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
