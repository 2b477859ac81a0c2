"""``HcpClient``: the platform API from synchronous code (scripts, notebooks, the CLI).

Shaped like Ray's ``JobSubmissionClient``: one object per API address, one method per
operation, typed results, refusals as typed ``HcpError``s. The notary's and the
marketplace's routes hang off ``client.notary`` and ``client.marketplace``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from hcp.client import calls
from hcp.client.live import LIVE_RETRY, LiveFeed
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
from hcp.client.sync_areas import MarketplaceApi, NotaryApi
from hcp.client.transport import RetryPolicy, SyncTransport
from hcp.fleet.modes import GpuMode
from hcp.workloads.types import WorkloadSpec, WorkloadState, WorkloadType

DEFAULT_URL = "http://127.0.0.1:8000"


def default_url(address: str | None) -> str:
    return address or os.environ.get("HCP_API_URL") or DEFAULT_URL


def default_token(token: str | None) -> str | None:
    return token if token is not None else os.environ.get("HCP_TOKEN")


class HcpClient:
    """``HcpClient("http://127.0.0.1:8000", token=...)``; address and token default to
    ``HCP_API_URL`` and ``HCP_TOKEN``. ``http`` takes a ready ``httpx.Client`` (tests pass one
    bound to the app)."""

    def __init__(self, address: str | None = None, token: str | None = None, *,
                 timeout: float = 30.0, retry: RetryPolicy | None = None,
                 http: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep,
                 seed: int | None = None) -> None:
        self._own = http is None
        self._http = http or httpx.Client(base_url=default_url(address), timeout=timeout)
        self._t = SyncTransport(self._http, default_token(token), retry, sleep, seed)
        self._sleep = sleep
        self._model: str | None = None
        self.notary = NotaryApi(self._t)
        self.marketplace = MarketplaceApi(self._t)

    @property
    def address(self) -> str:
        return self._t.base_url

    @property
    def token(self) -> str | None:
        return self._t.token

    @token.setter
    def token(self, value: str | None) -> None:
        self._t.token = value

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- workloads -----------------------------------------------------------------------
    def submit_workload(self, spec: WorkloadSpec | Mapping[str, Any] | None = None, /, *,
                        idempotency_key: str | None = None, **fields: Any) -> Workload:
        """Submit once, even across retries (one ``Idempotency-Key`` per call; pass your own
        to make a resubmission from another process land on the same workload)."""
        return self._t.run(calls.submit_workload(spec if spec is not None else fields, idempotency_key))

    def get_workload(self, workload_id: str) -> Workload:
        return self._t.run(calls.get_workload(workload_id))

    def cancel_workload(self, workload_id: str) -> Workload:
        return self._t.run(calls.cancel_workload(workload_id))

    def workload_logs(self, workload_id: str, after: int = -1, limit: int = 500) -> WorkloadLogs:
        """A container workload's output lines after ``after`` (its seq), oldest first."""
        return self._t.run(calls.workload_logs(workload_id, after, limit))

    def list_workloads(self, *, state: WorkloadState | str | None = None,
                       type: WorkloadType | str | None = None, owner: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workload]:
        return self._t.run(calls.list_workloads(state, type, owner, limit, cursor))

    def iter_workloads(self, *, state: WorkloadState | str | None = None,
                       type: WorkloadType | str | None = None, owner: str | None = None,
                       page_size: int = 100) -> Iterator[Workload]:
        """Every matching workload, page after page."""
        cursor: str | None = None
        while True:
            page = self.list_workloads(state=state, type=type, owner=owner, limit=page_size,
                                       cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def wait_workload(self, workload_id: str, *, timeout_s: float = 600.0,
                      poll_s: float = 1.0) -> Workload:
        """Poll until the workload is completed, failed or cancelled (TimeoutError after)."""
        deadline = time.monotonic() + timeout_s
        while True:
            w = self.get_workload(workload_id)
            if w.terminal:
                return w
            if time.monotonic() >= deadline:
                raise TimeoutError(f"workload {workload_id} still {w.state.value} after {timeout_s}s")
            self._sleep(poll_s)

    # --- fleet, history, economics, billing ----------------------------------------------
    def resources(self, *, facility: str | None = None, mode: GpuMode | str | None = None) -> Resources:
        return self._t.run(calls.resources(facility, mode))

    def set_mode(self, device_id: str, mode: GpuMode | str, *, reason: str = "sdk") -> SwitchResult:
        return self._t.run(calls.set_mode(device_id, mode, reason))

    def list_switches(self, *, device: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[Event]:
        return self._t.run(calls.switches(device, limit, cursor))

    def iter_switches(self, *, device: str | None = None, page_size: int = 100) -> Iterator[Event]:
        """Every recorded switch, newest first."""
        cursor: str | None = None
        while True:
            page = self.list_switches(device=device, limit=page_size, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def profitability(self) -> Profitability:
        return self._t.run(calls.profitability())

    def revenue(self) -> Revenue:
        return self._t.run(calls.revenue())

    def billing(self, owner: str | None = None) -> Billing:
        return self._t.run(calls.billing(owner))

    def device_history(self, device_id: str, window: str = "1h") -> MetricsHistory:
        """A GPU's last hour (``1h``, per minute), day (``1d``, per 5 min) or 30 days (``30d``,
        per hour): power, temperature, utilization, hashrate."""
        return self._t.run(calls.device_history(device_id, window))

    def facility_history(self, facility: str, window: str = "1h") -> MetricsHistory:
        """A facility's GPUs together over the window (power summed, hottest temperature)."""
        return self._t.run(calls.facility_history(facility, window))

    # --- inference -----------------------------------------------------------------------
    def list_models(self) -> list[ModelCard]:
        return self._t.run(calls.list_models())

    def embed(self, texts: str | Sequence[str], *, model: str | None = None,
              encoding_format: str = "base64") -> Embeddings:
        """Embeddings of one text or a batch (the served model unless ``model`` is given)."""
        if model is None:
            self._model = self._model or self.list_models()[0].id
        return self._t.run(calls.embed(texts, model or self._model or "", encoding_format))

    # --- live ----------------------------------------------------------------------------
    def live(self, after: int | None = None, *, reconnect: bool = True,
             retry: RetryPolicy = LIVE_RETRY, idle_timeout: float | None = 60.0) -> LiveFeed:
        """Switch and workload events as they land; resumes after a drop without loss or repeat."""
        return LiveFeed(self.address, self.token, after, reconnect=reconnect, retry=retry,
                        idle_timeout=idle_timeout, sleep=self._sleep)
