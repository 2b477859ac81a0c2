"""What the API routers call: small async interfaces, so the app runs over Ray handles in
Serve and over fakes or a real store in tests, with the same routes.

Methods return the core's typed messages (fleet) or JSON-able data, and raise typed hcp
errors; the routes turn them into JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hcp.clock import Clock, SystemClock
from hcp.fleet.facility import FacilityReport
from hcp.fleet.status import SwitchResult
from hcp.observability.history import HistoryService
from hcp.ratelimit import LeasedRateLimiter
from hcp.workloads.types import WorkloadSpec


class WorkloadService(Protocol):
    """The router's interface (actors/router.py), awaited."""

    async def submit(
        self, owner: str, spec: WorkloadSpec, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """The committed view; ``replayed`` is true when the key had already admitted it."""
        ...

    async def get(self, workload_id: str) -> dict[str, Any]: ...

    async def list(
        self, owner: str | None, state: str | None, type: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]: ...

    async def cancel(self, workload_id: str) -> dict[str, Any]: ...

    async def usage(self, owner: str | None) -> dict[str, Any]: ...


class FleetService(Protocol):
    async def facility_reports(self) -> list[FacilityReport]:
        """One ``FacilityActor.report()`` per facility (with its GPUs' status and ASIC modes)."""
        ...

    async def set_mode(self, device_id: str, mode: str, reason: str,
                       correlation_id: str | None = None) -> SwitchResult:
        """Switch one GPU or ASIC; the committed switch result."""
        ...


class EconomicsService(Protocol):
    async def profitability(self) -> dict[str, Any]: ...


class SwitchLog(Protocol):
    """Mode changes from the append-only event log, newest first."""

    def switches(
        self, device_id: str | None, limit: int, before_id: int | None
    ) -> list[dict[str, Any]]: ...


class EventFeed(Protocol):
    """Live events by id, oldest first (the WebSocket's source); see ``StoreEventFeed``."""

    def after(self, after_id: int, limit: int) -> list[dict[str, Any]]: ...

    def scan(self, after_id: int, limit: int) -> tuple[list[dict[str, Any]], list[int]]: ...

    def by_ids(self, ids: list[int]) -> tuple[list[dict[str, Any]], list[int]]: ...

    def last_id(self) -> int: ...


class UsageLedger(Protocol):
    """Inference usage per client (embeddings requests and tokens)."""

    def add(self, owner: str, model: str, requests: int, tokens: int) -> None: ...

    def add_many(self, model: str, per_owner: Mapping[str, tuple[int, int]]) -> None: ...

    def totals(self, owner: str | None) -> dict[str, Any]: ...


class Embedder(Protocol):
    async def embed(self, owner: str, texts: list[str]) -> tuple[list[list[float]], int]:
        """Embeddings of ``texts`` (in order) and the number of input tokens they used."""
        ...


class RunLogs(Protocol):
    """The stored output of a workload's container (``hcp.agent.store.SqlRunStore``)."""

    def read_logs(self, job_id: str, after: int, limit: int) -> list[Any]: ...


@dataclass
class ApiServices:
    workloads: WorkloadService
    fleet: FleetService
    economics: EconomicsService
    switch_log: SwitchLog
    feed: EventFeed
    usage: UsageLedger
    limiter: LeasedRateLimiter  # over the shared SQL, Redis or in-process counters
    embedder: Embedder | None = None
    model_name: str = "all-MiniLM-L6-v2"
    clock: Clock = field(default_factory=SystemClock)
    run_logs: RunLogs | None = None
    history: HistoryService | None = None  # GET /api/v1/metrics/...
