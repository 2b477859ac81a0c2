"""Idempotency keys: a retried submission gets its first workload back, across restarts."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from hcp.auth.tokens import Role
from hcp.errors import IdempotencyKeyReusedError, InvalidWorkloadError, StoreError
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import WorkloadRepository
from hcp.workloads.router import WorkloadRouter

from .helpers import FakeClock

SPEC = {"type": "batch", "priority": 3, "duration_seconds": 60, "name": "nightly"}


_IDS = (f"w{i}" for i in itertools.count(1))  # unique across the routers of a test


def _router(engine: Engine, clock: FakeClock | None = None) -> WorkloadRouter:
    ids = _IDS
    r = WorkloadRouter(WorkloadRepository(engine), PriceTable.of({}, 0), clock or FakeClock(),
                       new_id=lambda: next(ids))
    r.resume()
    return r


def test_same_key_same_workload_before_and_after_the_commit(sqlite_engine: Engine) -> None:
    r = _router(sqlite_engine)
    first, replayed = r.admit_keyed("alice", SPEC, "k-1")
    assert not replayed and first.idempotency_key == "k-1"
    again, replayed = r.admit_keyed("alice", dict(SPEC), "k-1")  # still only in memory
    assert replayed and again is first
    r.flush()
    other, replayed = r.admit_keyed("bob", SPEC, "k-1")  # keys are per owner
    assert not replayed and other.id != first.id
    assert len(r.queues) == 2 and r.repo is not None
    assert r.repo.count() == 1  # bob's is not flushed yet; nothing was written twice


def test_a_restarted_router_still_knows_the_key(sqlite_engine: Engine) -> None:
    clock = FakeClock()
    r = _router(sqlite_engine, clock)
    first, _ = r.admit_keyed("alice", SPEC, "k-1")
    r.cancel(first.id)
    r.flush()
    again = _router(sqlite_engine, clock)  # a new process: nothing in memory
    again.preload_keys([("alice", "k-1"), ("alice", "k-2")])
    back, replayed = again.admit_keyed("alice", SPEC, "k-1")
    assert replayed and back.id == first.id and back.state.value == "cancelled"
    fresh, replayed = again.admit_keyed("alice", SPEC, "k-2")
    assert not replayed
    again.flush()
    assert again.repo is not None and again.repo.count() == 2


def test_another_spec_under_a_used_key_is_refused(sqlite_engine: Engine) -> None:
    r = _router(sqlite_engine)
    first, _ = r.admit_keyed("alice", SPEC, "k-1")
    with pytest.raises(IdempotencyKeyReusedError) as ei:
        r.admit_keyed("alice", {**SPEC, "priority": 9}, "k-1")
    assert ei.value.http_status == 409 and ei.value.context["workload_id"] == first.id
    with pytest.raises(InvalidWorkloadError):
        r.admit_keyed("alice", SPEC, "x" * 201)


def test_a_key_whose_write_failed_is_free_again(sqlite_engine: Engine,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    r = _router(sqlite_engine)
    first, _ = r.admit_keyed("alice", SPEC, "k-1")
    assert r.repo is not None

    def down(_batch: Any) -> None:
        raise StoreError("store down")

    monkeypatch.setattr(r.repo, "apply", down)
    with pytest.raises(StoreError):
        r.flush()  # the submitter was told it failed: the workload does not exist
    monkeypatch.undo()
    again, replayed = r.admit_keyed("alice", SPEC, "k-1")
    assert not replayed and again.id != first.id
    r.flush()
    assert r.repo.count() == 1


def test_http_retry_returns_the_first_workload(sqlite_engine: Engine, tmp_path: Any) -> None:
    from tests.unit.api.support import make_harness

    h = make_harness(tmp_path, real_router=True)  # the API's adapter over the real core
    app = h.app
    hdr = h.headers(Role.CUSTOMER, "alice")

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            one = await c.post("/api/v1/workloads", json=SPEC,
                               headers={**hdr, "Idempotency-Key": "order-7"})
            two = await c.post("/api/v1/workloads", json=SPEC,
                               headers={**hdr, "Idempotency-Key": "order-7"})
            assert (one.status_code, two.status_code) == (201, 200)
            assert two.headers["Idempotent-Replayed"] == "true"
            assert "Idempotent-Replayed" not in one.headers
            assert one.json() == two.json() and one.json()["idempotency_key"] == "order-7"
            clash = await c.post("/api/v1/workloads", json={**SPEC, "priority": 4},
                                 headers={**hdr, "Idempotency-Key": "order-7"})
            assert clash.status_code == 409
            assert clash.json()["error"] == "idempotency_key_reused"
            listed = await c.get("/api/v1/workloads", headers=hdr)
            assert [w["id"] for w in listed.json()["items"]] == [one.json()["id"]]

    asyncio.run(run())
