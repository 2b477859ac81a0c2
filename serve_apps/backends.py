"""The API's services over Ray actor handles (router, fleet, optimizer), found by name.

Handles are looked up lazily and dropped when their actor dies, so the API starts before
(or outlives a restart of) the actors it fronts. Remote errors come back as the typed hcp
error the actor raised; a dead or missing actor is a 503 with a specific code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ray.exceptions import RayActorError, RayTaskError

from hcp.asyncbatch import NaturalBatcher
from hcp.config import Settings
from hcp.errors import (
    HcpError,
    NotFoundError,
    OptimizerUnavailableError,
    RouterUnavailableError,
    ServiceUnavailableError,
    UnknownDeviceError,
    WorkloadNotFoundError,
)
from hcp.fleet.facility import FacilityReport
from hcp.fleet.status import SwitchResult
from hcp.workloads.repository import WorkloadRepository
from hcp.workloads.types import Submission, WorkloadSpec

log = logging.getLogger(__name__)

async def call_actor(ref_factory: Callable[[], Any], unavailable: type[HcpError], what: str) -> Any:
    """Await one actor call; re-raise its typed error; a dead actor becomes ``unavailable``."""
    try:
        return await ref_factory()
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, HcpError):
            raise cause from None
        raise unavailable(f"{what} failed: {type(cause or exc).__name__}") from exc
    except RayActorError as exc:
        raise unavailable(f"{what} is not available: {exc.__class__.__name__}") from exc


class RouterWorkloads:
    """Workloads through the router actor; reads straight from the store when given one.

    Submissions from concurrent requests share one ``submit_batch`` call (natural batching:
    no delay when idle). Reads go to the store the router commits to: every acknowledged
    submission or cancellation is already there, so a client reads its own writes without
    a router round trip; a workload the router has just moved on may show its previous
    state for a few milliseconds, until the router's next commit.
    """

    def __init__(
        self, settings: Settings, reads: WorkloadRepository, max_batch: int = 256
    ) -> None:
        self._settings = settings
        self._handle: Any = None
        self._reads = reads
        # A SQLite page read is a fraction of a millisecond of Python work that needs the GIL
        # anyway, and WAL readers never wait for the router's writes: a worker-thread hop
        # would only add to it. Server databases are read in a thread (network waits).
        self._inline_reads = reads.engine.dialect.name == "sqlite"
        self._batcher: NaturalBatcher[Submission, dict[str, Any]] = (
            NaturalBatcher(self._submit_batch, max_batch=max_batch)
        )

    def _router(self) -> Any:
        if self._handle is None:
            from actors.router import find_router

            self._handle = find_router(self._settings)
        return self._handle

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            handle = self._router()
            return await call_actor(
                lambda: getattr(handle, method).remote(*args),
                RouterUnavailableError,
                "the workload router",
            )
        except RouterUnavailableError:
            self._handle = None  # look it up again next time (it may have been restarted)
            raise

    async def _submit_batch(
        self, items: list[Submission]
    ) -> list[dict[str, Any] | BaseException]:
        answers = await self._call("submit_batch", items)
        return [a if isinstance(a, BaseException) else {**a.workload.view(), "replayed": a.replayed}
                for a in answers]

    async def submit(
        self, owner: str, spec: WorkloadSpec, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """The committed view, with ``replayed`` true when the key had already admitted it."""
        return await self._batcher.submit(Submission(owner, spec, idempotency_key))

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._inline_reads:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def get(self, workload_id: str) -> dict[str, Any]:
        w = await self._read(self._reads.get, workload_id)
        if w is None:
            raise WorkloadNotFoundError(f"no workload {workload_id!r}", workload_id=workload_id)
        return w.view()

    async def list(
        self, owner: str | None, state: str | None, type: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        items, nxt = await self._read(self._reads.page, owner, state, type, limit, cursor)
        return {"items": [w.view() for w in items], "next_cursor": nxt}

    async def cancel(self, workload_id: str) -> dict[str, Any]:
        return (await self._call("cancel", workload_id)).view()

    async def usage(self, owner: str | None) -> dict[str, Any]:
        return (await self._call("usage", owner)).to_dict()

    async def acquire_inference_gpu(self, owner: str) -> str:
        return await self._call("acquire_inference_gpu", owner)


class ActorFleet:
    """The fleet through the typed handle wrapper (``actors.handles.FleetClient``)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handles: Any = None

    def _fleet(self) -> Any:
        if self._handles is None:
            from actors.fleet import find_fleet

            try:
                self._handles = find_fleet(self._settings)
            except NotFoundError as exc:
                raise ServiceUnavailableError(exc.detail) from None
        return self._handles

    async def facility_reports(self) -> list[FacilityReport]:
        try:
            return await self._fleet().afacility_reports()
        except ServiceUnavailableError:
            self._handles = None  # found again next time (the fleet may have been restarted)
            raise
        except HcpError as exc:
            if exc.http_status >= 500:
                self._handles = None
            raise

    async def set_mode(self, device_id: str, mode: str, reason: str,
                       correlation_id: str | None = None) -> SwitchResult:
        fleet = self._fleet()
        if device_id not in fleet.gpus and device_id not in fleet.asic_facility:
            raise UnknownDeviceError(
                f"no device {device_id!r} in the running fleet", device_id=device_id
            )
        return await fleet.aswitch(device_id, mode, reason, correlation_id)


class OptimizerEconomics:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handle: Any = None

    async def profitability(self) -> dict[str, Any]:
        if self._handle is None:
            try:
                from actors.optimizer import find_optimizer

                self._handle = find_optimizer(self._settings)
            except (ImportError, NotFoundError) as exc:
                raise OptimizerUnavailableError(f"the optimizer is not running: {exc}") from None
        handle = self._handle
        try:
            result = await call_actor(
                lambda: handle.profitability.remote(), OptimizerUnavailableError, "the optimizer"
            )
            return result.to_dict()
        except OptimizerUnavailableError:
            self._handle = None
            raise
