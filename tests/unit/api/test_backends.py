"""The Ray-handle adapters, driven with stand-in handles (no Ray): batched submissions,
reads and type-filtered pagination from the store, lookup failures as typed 503s."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine

from hcp.config import Settings
from hcp.errors import (
    InvalidWorkloadError,
    OptimizerUnavailableError,
    RouterUnavailableError,
    ValidationError,
    WorkloadNotFoundError,
)
from hcp.workloads.repository import WorkloadRepository
from serve_apps.backends import OptimizerEconomics, RouterWorkloads
from tests.unit.api.support import CoreRouterHandle, router_workloads


@pytest.fixture
def store(sqlite_engine: Engine) -> WorkloadRepository:
    return WorkloadRepository(sqlite_engine)


def _backend(repo: WorkloadRepository) -> tuple[RouterWorkloads, CoreRouterHandle]:
    handle = CoreRouterHandle(repo)
    return router_workloads(handle), handle


def test_concurrent_submissions_share_router_calls_and_fail_alone(
        store: WorkloadRepository) -> None:
    backend, handle = _backend(store)
    specs = [{"type": "batch", "priority": 1 + i % 10, "duration_seconds": 60} for i in range(30)]
    specs[7] = {"type": "batch", "priority": 11, "duration_seconds": 60}  # out of range

    async def run() -> list[Any]:
        return await asyncio.gather(*(backend.submit("alice", s) for s in specs),
                                    return_exceptions=True)

    out = asyncio.run(run())
    assert isinstance(out[7], InvalidWorkloadError)
    ok = [v for i, v in enumerate(out) if i != 7]
    assert all(v.pop("replayed") is False for v in ok)
    assert all(v["owner"] == "alice" and v["state"] == "queued" for v in ok)
    assert sum(handle.batches) == 30 and len(handle.batches) < 30  # batched
    # Reads come from the store: every acknowledged submission is there, newest first.
    page = asyncio.run(backend.list("alice", None, None, 100, None))
    assert [w["id"] for w in page["items"]] == [v["id"] for v in reversed(ok)]
    assert asyncio.run(backend.get(ok[0]["id"])) == ok[0]
    with pytest.raises(WorkloadNotFoundError):
        asyncio.run(backend.get("no-such-workload"))


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 50])
def test_type_filter_pages_never_overflow_and_lose_nothing(
        store: WorkloadRepository, limit: int) -> None:
    types = ["batch", "training", "training", "batch", "inference", "training", "batch",
             "batch", "training"]
    backend, _ = _backend(store)
    made = [asyncio.run(backend.submit("a", {"type": t, "priority": 3, "duration_seconds": 60}))
            for t in types]
    for m in made:
        m.pop("replayed")
    asyncio.run(backend.submit("b", {"type": "training", "priority": 3, "duration_seconds": 60}))
    seen, cursor = [], None
    for _ in range(50):
        page = asyncio.run(backend.list("a", None, "training", limit, cursor))
        assert len(page["items"]) <= limit
        assert all(w["type"] == "training" and w["owner"] == "a" for w in page["items"])
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [w["id"] for w in reversed(made) if w["type"] == "training"]
    with pytest.raises(ValidationError):
        asyncio.run(backend.list("a", None, None, 10, "not-a-cursor"))


def test_missing_router_and_optimizer_are_typed_503s(
        monkeypatch: pytest.MonkeyPatch, store: WorkloadRepository) -> None:
    import actors.optimizer
    import actors.router
    from hcp.errors import NotFoundError

    def no_router(_s: Settings) -> Any:
        raise RouterUnavailableError("no router running")

    def no_optimizer(_s: Settings) -> Any:
        raise NotFoundError("no optimizer is running")

    monkeypatch.setattr(actors.router, "find_router", no_router)
    monkeypatch.setattr(actors.optimizer, "find_optimizer", no_optimizer)
    with pytest.raises(RouterUnavailableError):
        asyncio.run(RouterWorkloads(Settings(), store).submit("a", {"type": "batch"}))
    with pytest.raises(OptimizerUnavailableError) as exc:
        asyncio.run(OptimizerEconomics(Settings()).profitability())
    assert exc.value.http_status == 503 and exc.value.code == "optimizer_unavailable"
