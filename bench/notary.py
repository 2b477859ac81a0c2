"""Notary throughput and latency (``python -m bench.notary``).

Real claims of the reference task (logistic regression ``train.wasm`` from
``hcp.notary.reference_task``; ``--wat`` uses a tiny WAT module instead) go through the whole
pipeline over HTTP (FastAPI app in-process via httpx's ASGI transport; multipart parsing,
Ed25519, SQL rate limiter and nonce store on SQLite, safe extraction, wasmtime sandbox on a
local pool of ``--workers`` threads, ledger write) at concurrency 1, 8 and 32.

Lines (one JSON object each, ``bench.common.emit``):
- ``verified_per_s_c<N>``: verified claims/s; baseline = sandbox runs/s alone at the same
  concurrency on the same pool (ratio = pipeline share of the sandbox's throughput).
- ``latency_p50_s_c<N>`` / ``latency_p99_s_c<N>``: per-claim latency; baseline = the sandbox
  run alone at that concurrency (ratio = the pipeline's overhead ratio).
- ``stage_ms_<stage>_c<N>``: mean time per pipeline stage (sandbox includes queueing).
Claims use ``--distinct`` hyperparameter sets whose scores are measured first (the baseline
runs), so every claim verifies; repeats of an artifact are recorded as duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from nacl.signing import SigningKey

from bench.common import emit, note, percentile
from hcp.config import Settings
from hcp.notary.canonical import jcs_bytes
from hcp.notary.ledger import TaskRecord
from hcp.notary.pool import LocalSandboxPool, SandboxJob, run_job
from hcp.notary.sandbox.base import SandboxLimits
from hcp.notary.sandbox.wasm import WasmtimeSandbox
from hcp.notary.service import build_service
from hcp.notary.storage import sha256_ref
from hcp.store.db import connect, migrate
from serve_apps.notary.app import create_app


class _StageRecorder:
    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.rejections: dict[str, int] = defaultdict(int)

    def stage(self, stage: str, seconds: float) -> None:
        self.sums[stage] += seconds
        self.counts[stage] += 1

    def rejected(self, reason: str) -> None:
        self.rejections[reason] += 1

    def verified(self, seconds: float) -> None:
        pass

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()
        self.rejections.clear()


def _artifact(wasm: bytes, hyper: bytes) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("train.wasm", wasm), ("hyperparameters.json", hyper)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _workload(use_wat: bool) -> tuple[bytes, bytes, list[bytes]]:
    if use_wat:
        import wasmtime

        text = b"final score: 0.9731\n"
        esc = "".join(f"\\{b:02x}" for b in text)
        wasm = wasmtime.wat2wasm(f"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1) (data (i32.const 64) "{esc}")
  (func (export "_start") (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len(text)}))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))""")
        hypers = [json.dumps({"seed": i}).encode() for i in range(64)]
        return wasm, b"a,b\n1,2\n", hypers
    from hcp.notary import reference_task as rt

    hypers = [rt.hyperparameters_json({"seed": i}) for i in range(64)]
    return rt.wasm_bytes(), rt.dataset_bytes(), hypers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--claims", type=int, default=32, help="claims per level (at least c)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--distinct", type=int, default=8)
    ap.add_argument("--wat", action="store_true", help="tiny WAT module instead of train.wasm")
    args = ap.parse_args()

    wasm, dataset, hypers = _workload(args.wat)
    hypers = hypers[: args.distinct]
    limits = SandboxLimits(fuel=10**12, memory_bytes=512 << 20, timeout_seconds=120,
                           max_stdout_bytes=65536)
    sandbox = WasmtimeSandbox()
    # Warm the module cache and measure each distinct artifact's score (the claims' truth).
    scores = []
    for h in hypers:
        r = run_job(sandbox, SandboxJob(wasm, h, dataset, limits))
        assert r.score is not None, r
        scores.append(r.score)
    note(f"workload: {'wat' if args.wat else 'reference train.wasm'}, {len(hypers)} artifacts, "
         f"workers={args.workers}")

    home = Path(tempfile.mkdtemp(prefix="hcp-bench-notary-"))
    settings = Settings(home=home, jwt_secret="b" * 40, notary_sandbox_workers=args.workers,
                        notary_sandbox_queue=max(args.concurrency) * 2,
                        notary_miner_limit=10**9, notary_client_limit=10**9,
                        notary_task_cache_seconds=5)
    engine = connect(settings.resolved_database_url)
    migrate(engine)
    recorder = _StageRecorder()
    recorder.reset()
    pool = LocalSandboxPool(sandbox, args.workers, settings.notary.sandbox_queue)
    svc = build_service(settings, engine, pool=pool, metrics=recorder)  # type: ignore[arg-type]
    app = create_app(settings, svc)
    now = datetime.now(UTC)
    ref = svc.datasets.put(dataset)
    svc.ledger.create_task(TaskRecord("bench", "accuracy", min(scores) - 0.01, ref, 120, 1, now,
                                      now + timedelta(days=1), "active"))
    key = SigningKey.generate()
    miner_id = str(uuid.uuid4())
    svc.ledger.register_miner(miner_id, key.verify_key.encode().hex(), 10**6, now)
    artifacts = [_artifact(wasm, h) for h in hypers]

    def form(i: int) -> tuple[dict[str, str], dict[str, Any]]:
        art = artifacts[i % len(artifacts)]
        payload = {"miner_id": miner_id, "task_id": "bench", "claimed_score": scores[i % len(scores)],
                   "artifact_hash": sha256_ref(art), "timestamp": datetime.now(UTC).isoformat(),
                   "nonce": str(uuid.uuid4())}
        sig = key.sign(jcs_bytes(payload)).signature.hex()
        return {"payload": json.dumps(payload), "signature": sig}, {"artifact": ("a.tar.gz", art)}

    async def level(c: int, n: int) -> tuple[list[float], float, int]:
        sem = asyncio.Semaphore(c)
        lat: list[float] = []
        ok = 0

        async def one(client: httpx.AsyncClient, i: int) -> None:
            nonlocal ok
            data, files = form(i)
            async with sem:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/submit", data=data, files=files)
                lat.append(time.perf_counter() - t0)
            if r.status_code == 202:
                ok += 1
            else:
                note(f"claim refused: {r.status_code} {r.text[:200]}")

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     timeout=600) as client:
            t0 = time.perf_counter()
            await asyncio.gather(*[one(client, i) for i in range(n)])
            return lat, time.perf_counter() - t0, ok

    def sandbox_alone(c: int, n: int) -> tuple[list[float], float]:
        lat: list[float] = []

        def one(i: int) -> None:
            t0 = time.perf_counter()
            pool.run(SandboxJob(wasm, hypers[i % len(hypers)], dataset, limits))
            lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=c) as ex:
            list(ex.map(one, range(n)))
        return lat, time.perf_counter() - t0

    for c in args.concurrency:
        n = max(args.claims, c)
        base_lat, base_wall = sandbox_alone(c, n)
        recorder.reset()
        lat, wall, ok = asyncio.run(level(c, n))
        extra = {"concurrency": c, "n": n, "verified": ok, "workers": args.workers,
                 "workload": "wat" if args.wat else "reference"}
        emit("notary", f"verified_per_s_c{c}", ok / wall, "claims/s", baseline=n / base_wall,
             **extra)
        emit("notary", f"latency_p50_s_c{c}", percentile(lat, 50), "s",
             baseline=percentile(base_lat, 50), **extra)
        emit("notary", f"latency_p99_s_c{c}", percentile(lat, 99), "s",
             baseline=percentile(base_lat, 99), **extra)
        for stage, total in sorted(recorder.sums.items()):
            emit("notary", f"stage_ms_{stage}_c{c}", 1000 * total / recorder.counts[stage], "ms",
                 **extra)
    pool.close()


if __name__ == "__main__":
    main()
