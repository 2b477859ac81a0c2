"""The sandbox-runner actor pool on a real Ray session, alone and behind the notary's HTTP."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from actors.notary import RaySandboxPool, start_sandbox_pool
from hcp.config import Settings
from hcp.errors import SandboxBusyError
from hcp.notary.pool import SandboxJob
from hcp.notary.sandbox.base import SandboxLimits, SandboxOutcome
from serve_apps.notary.app import create_app
from tests.unit.notary import wat_modules as wat
from tests.unit.notary.support import (
    Miner,
    add_task,
    asgi_client,
    make_artifact,
    make_service,
    notary_settings,
    register,
)

LIMITS = SandboxLimits(fuel=10**10, memory_bytes=16 << 20, timeout_seconds=0.5,
                       max_stdout_bytes=4096)


@pytest.fixture(scope="module")
def runners(ray_session: None) -> list:
    settings = Settings(ray_namespace="hcp-test-notary", notary_sandbox_workers=2)
    return start_sandbox_pool(settings)


def test_pool_runs_jobs_on_the_actors(runners: list) -> None:
    pool = RaySandboxPool(runners, queue=8)
    jobs = [SandboxJob(wat.score_wasm(f"0.{i}1"), None, b"a,b\n", LIMITS) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as ex:
        results = list(ex.map(pool.run, jobs))
    assert [r.score for r in results] == [float(f"0.{i}1") for i in range(6)]
    assert pool.run(SandboxJob(wat.infinite_loop_wasm(), None, b"", LIMITS)).outcome is \
        SandboxOutcome.TIMEOUT


def test_pool_refuses_beyond_capacity(runners: list) -> None:
    pool = RaySandboxPool(runners, queue=0)
    slow = SandboxJob(wat.infinite_loop_wasm(), None, b"", LIMITS)
    with ThreadPoolExecutor(max_workers=4) as ex:
        futures = [ex.submit(pool.run, slow) for _ in range(4)]
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result().outcome)
            except SandboxBusyError:
                outcomes.append("busy")
    assert outcomes.count(SandboxOutcome.TIMEOUT) >= 2 and "busy" in outcomes


def test_notary_http_over_ray_pool(runners: list, tmp_path: Path) -> None:
    settings = notary_settings(tmp_path)
    svc = make_service(settings, pool=RaySandboxPool(runners, queue=8))
    app = create_app(settings, svc)
    add_task(svc)
    miner = Miner()
    register(svc, miner)
    good = make_artifact(wat.score_wasm("0.9731"))

    async def go() -> list:
        async with asgi_client(app) as c:
            forms = [miner.form(good, 0.9731) for _ in range(4)]
            forms.append(miner.form(make_artifact(wat.infinite_loop_wasm()), 0.99))
            return await asyncio.gather(*[c.post("/api/v1/submit", data=d, files=f)
                                          for d, f in forms])
    responses = asyncio.run(go())
    assert [r.status_code for r in responses] == [202, 202, 202, 202, 422]
    assert responses[-1].json()["details"].startswith("Sandbox execution timed out")
    dup = [r.json()["duplicate_of"] for r in responses[:4]]
    assert dup.count(None) == 1  # same artifact four times: one first finder


def test_runner_restarts_after_a_crash(runners: list) -> None:
    import ray

    ray.kill(runners[0], no_restart=False)
    pool = RaySandboxPool(runners[:1], queue=2)
    job = SandboxJob(wat.score_wasm("0.5"), None, b"", LIMITS)
    for _ in range(40):
        try:
            assert pool.run(job).score == 0.5
            break
        except SandboxBusyError:
            import time

            time.sleep(0.25)
    else:
        pytest.fail("runner did not come back")


def test_the_pool_shrinks_to_the_cpus_the_cluster_has_free() -> None:
    from actors.notary import _pool_shape

    assert _pool_shape(2, 8.0) == (2, 1.0)
    assert _pool_shape(4, 2.5) == (2, 1.0)
    # fewer than one CPU free: one runner on that share, so the platform still starts
    assert _pool_shape(2, 0.5) == (1, 0.5)
