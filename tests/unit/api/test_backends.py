"""The Ray-handle adapters, driven with stand-in handles (no Ray): type-filtered pagination
over the router, lookup failures as typed 503s."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hcp.config import Settings
from hcp.errors import OptimizerUnavailableError, RouterUnavailableError
from serve_apps.backends import OptimizerEconomics, RouterWorkloads


class _Method:
    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        self._fn = fn

    def remote(self, *args: Any) -> Any:
        async def call() -> Any:
            return self._fn(*args)

        return call()


class FakeRouterHandle:
    """The router's list contract: newest first, cursor = seq of the last item, state filter."""

    def __init__(self, types: list[str]) -> None:
        self.rows = [
            {"id": f"w{i}", "seq": i, "type": t, "state": "queued", "owner": "a"}
            for i, t in enumerate(types, start=1)
        ]
        self.calls: list[tuple[Any, ...]] = []
        self.list = _Method(self._list)

    def _list(
        self, owner: str | None, state: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        self.calls.append((owner, state, limit, cursor))
        rows = [r for r in reversed(self.rows) if cursor is None or r["seq"] < int(cursor)]
        page = rows[:limit]
        more = len(rows) > limit
        return {"items": page, "next_cursor": str(page[-1]["seq"]) if more and page else None}


def _router(types: list[str]) -> tuple[RouterWorkloads, FakeRouterHandle]:
    backend = RouterWorkloads(Settings())
    handle = FakeRouterHandle(types)
    backend._handle = handle  # what find_router would have returned
    return backend, handle


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 50])
def test_type_filter_pages_never_overflow_and_lose_nothing(limit: int) -> None:
    types = [
        "batch",
        "training",
        "training",
        "batch",
        "inference",
        "training",
        "batch",
        "batch",
        "training",
    ]
    backend, handle = _router(types)
    seen, cursor = [], None
    for _ in range(50):
        page = asyncio.run(backend.list("a", None, "training", limit, cursor))
        assert len(page["items"]) <= limit
        assert all(w["type"] == "training" for w in page["items"])
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [r["id"] for r in reversed(handle.rows) if r["type"] == "training"]
    assert seen == expected


def test_unfiltered_list_is_one_router_call() -> None:
    backend, handle = _router(["batch"] * 5)
    page = asyncio.run(backend.list(None, "queued", None, 2, None))
    assert [w["id"] for w in page["items"]] == ["w5", "w4"] and page["next_cursor"] == "4"
    assert handle.calls == [(None, "queued", 2, None)]


def test_missing_router_and_optimizer_are_typed_503s(monkeypatch: pytest.MonkeyPatch) -> None:
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
        asyncio.run(RouterWorkloads(Settings()).get("w1"))
    with pytest.raises(OptimizerUnavailableError) as exc:
        asyncio.run(OptimizerEconomics(Settings()).profitability())
    assert exc.value.http_status == 503 and exc.value.code == "optimizer_unavailable"
