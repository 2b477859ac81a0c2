"""``AsyncHcpClient``: the same API as ``HcpClient`` for asyncio code, every method awaited.

Lists page as async iterators (``async for w in client.iter_workloads()``) and the live feed
is an async iterator that resumes after a reconnect (``async for e in client.live()``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from hcp.client import calls
from hcp.client.async_areas import AsyncMarketplaceApi, AsyncNotaryApi
from hcp.client.live import LIVE_RETRY, AsyncLiveFeed
from hcp.client.models import (
    Billing,
    Embeddings,
    Event,
    MetricsHistory,
    ModelCard,
    Page,
    Profitability,
    Resources,
    Revenue,
    SwitchResult,
    Workload,
    WorkloadLogs,
)
from hcp.client.sync import default_token, default_url
from hcp.client.transport import AsyncTransport, RetryPolicy
from hcp.fleet.modes import GpuMode
from hcp.workloads.types import WorkloadSpec, WorkloadState, WorkloadType


class AsyncHcpClient:
    """``async with AsyncHcpClient(address, token) as client: ...`` (see ``HcpClient``)."""

    def __init__(self, address: str | None = None, token: str | None = None, *,
                 timeout: float = 30.0, retry: RetryPolicy | None = None,
                 http: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep, seed: int | None = None) -> None:
        self._own = http is None
        self._http = http or httpx.AsyncClient(base_url=default_url(address), timeout=timeout)
        self._t = AsyncTransport(self._http, default_token(token), retry, sleep, seed)
        self._sleep = sleep
        self._model: str | None = None
        self.notary = AsyncNotaryApi(self._t)
        self.marketplace = AsyncMarketplaceApi(self._t)

    @property
    def address(self) -> str:
        return self._t.base_url

    @property
    def token(self) -> str | None:
        return self._t.token

    @token.setter
    def token(self, value: str | None) -> None:
        self._t.token = value

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _pause(self, seconds: float) -> None:
        waited = self._sleep(seconds)
        if asyncio.iscoroutine(waited):
            await waited

    # --- workloads -----------------------------------------------------------------------
    async def submit_workload(self, spec: WorkloadSpec | Mapping[str, Any] | None = None, /, *,
                              idempotency_key: str | None = None, **fields: Any) -> Workload:
        return await self._t.run(calls.submit_workload(spec if spec is not None else fields,
                                                       idempotency_key))

    async def get_workload(self, workload_id: str) -> Workload:
        return await self._t.run(calls.get_workload(workload_id))

    async def cancel_workload(self, workload_id: str) -> Workload:
        return await self._t.run(calls.cancel_workload(workload_id))

    async def workload_logs(self, workload_id: str, after: int = -1, limit: int = 500
                            ) -> WorkloadLogs:
        """A container workload's output lines after ``after`` (its seq), oldest first."""
        return await self._t.run(calls.workload_logs(workload_id, after, limit))

    async def list_workloads(self, *, state: WorkloadState | str | None = None,
                             type: WorkloadType | str | None = None, owner: str | None = None,
                             limit: int = 50, cursor: str | None = None) -> Page[Workload]:
        return await self._t.run(calls.list_workloads(state, type, owner, limit, cursor))

    async def iter_workloads(self, *, state: WorkloadState | str | None = None,
                             type: WorkloadType | str | None = None, owner: str | None = None,
                             page_size: int = 100) -> AsyncIterator[Workload]:
        cursor: str | None = None
        while True:
            page = await self.list_workloads(state=state, type=type, owner=owner, limit=page_size,
                                             cursor=cursor)
            for w in page.items:
                yield w
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def wait_workload(self, workload_id: str, *, timeout_s: float = 600.0,
                            poll_s: float = 1.0) -> Workload:
        deadline = time.monotonic() + timeout_s
        while True:
            w = await self.get_workload(workload_id)
            if w.terminal:
                return w
            if time.monotonic() >= deadline:
                raise TimeoutError(f"workload {workload_id} still {w.state.value} after {timeout_s}s")
            await self._pause(poll_s)

    # --- fleet, history, economics, billing ----------------------------------------------
    async def resources(self, *, facility: str | None = None,
                        mode: GpuMode | str | None = None) -> Resources:
        return await self._t.run(calls.resources(facility, mode))

    async def set_mode(self, device_id: str, mode: GpuMode | str, *,
                       reason: str = "sdk") -> SwitchResult:
        return await self._t.run(calls.set_mode(device_id, mode, reason))

    async def list_switches(self, *, device: str | None = None, limit: int = 50,
                            cursor: str | None = None) -> Page[Event]:
        return await self._t.run(calls.switches(device, limit, cursor))

    async def iter_switches(self, *, device: str | None = None,
                            page_size: int = 100) -> AsyncIterator[Event]:
        cursor: str | None = None
        while True:
            page = await self.list_switches(device=device, limit=page_size, cursor=cursor)
            for e in page.items:
                yield e
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def profitability(self) -> Profitability:
        return await self._t.run(calls.profitability())

    async def revenue(self) -> Revenue:
        return await self._t.run(calls.revenue())

    async def billing(self, owner: str | None = None) -> Billing:
        return await self._t.run(calls.billing(owner))

    async def device_history(self, device_id: str, window: str = "1h") -> MetricsHistory:
        """A GPU's last hour (``1h``, per minute), day (``1d``, per 5 min) or 30 days (``30d``,
        per hour): power, temperature, utilization, hashrate."""
        return await self._t.run(calls.device_history(device_id, window))

    async def facility_history(self, facility: str, window: str = "1h") -> MetricsHistory:
        """A facility's GPUs together over the window (power summed, hottest temperature)."""
        return await self._t.run(calls.facility_history(facility, window))

    # --- inference -----------------------------------------------------------------------
    async def list_models(self) -> list[ModelCard]:
        return await self._t.run(calls.list_models())

    async def embed(self, texts: str | Sequence[str], *, model: str | None = None,
                    encoding_format: str = "base64") -> Embeddings:
        if model is None:
            self._model = self._model or (await self.list_models())[0].id
        return await self._t.run(calls.embed(texts, model or self._model or "", encoding_format))

    # --- live ----------------------------------------------------------------------------
    def live(self, after: int | None = None, *, reconnect: bool = True,
             retry: RetryPolicy = LIVE_RETRY, idle_timeout: float | None = 60.0) -> AsyncLiveFeed:
        """``async with client.live() as feed: async for event in feed: ...``"""
        return AsyncLiveFeed(self.address, self.token, after, reconnect=reconnect, retry=retry,
                             idle_timeout=idle_timeout, sleep=self._pause)
