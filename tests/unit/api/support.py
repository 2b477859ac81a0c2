"""In-memory stand-ins for the router, fleet and optimizer, and an app built over them.

The fakes keep the router's contract (views, errors, pagination) so the HTTP layer is tested
without Ray; the event log and usage ledger are the real SQL ones on a SQLite file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from hcp.agent.store import SqlRunStore
from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.errors import (
    InvalidWorkloadError,
    UnknownDeviceError,
    WorkloadNotFoundError,
    WorkloadTransitionError,
)
from hcp.fleet.facility import FacilityReport
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.fleet.status import GpuStatus, SwitchResult
from hcp.fleet.telemetry import TelemetrySample
from hcp.inference.usage import SqlUsageLedger
from hcp.observability.history import HistoryService, SqlHistory
from hcp.ratelimit import LeasedRateLimiter, MemoryRateLimiter
from hcp.store import connect, migrate
from hcp.workloads.repository import WorkloadRepository
from hcp.workloads.types import Admission, WorkloadSpec
from serve_apps.eventlog import StoreEventFeed, StoreSwitchLog
from serve_apps.factory import build_app
from serve_apps.services import ApiServices

SECRET = "unit-test-secret-" + "x" * 32

SPEC = {
    "fleet": "unit",
    "facilities": [
        {
            "name": "lab",
            "location": "test",
            "capacity_mw": 0.01,
            "pue": 1.2,
            "gpus": [{"id": "g0", "model": "H100"}, {"id": "g1", "model": "L40S"}],
            "asics": [{"id": "s21", "model": "S21", "count": 1}],
        }
    ],
}


class FixedClock:
    """Starts at the real time (PyJWT checks ``iat`` against the wall clock) and moves when told."""

    def __init__(self) -> None:
        self.t = datetime.now(UTC)

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()


class FakeWorkloads:
    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.items: dict[str, dict[str, Any]] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self._ids = itertools.count(1)

    async def submit(
        self, owner: str, spec: WorkloadSpec, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        # The key's full contract (same spec, 409 otherwise, across restarts) is tested over
        # the real router core; here a key just returns its first workload.
        if idempotency_key is not None and (owner, idempotency_key) in self.keys:
            return {**self.items[self.keys[(owner, idempotency_key)]], "replayed": True}
        s = WorkloadSpec.model_validate(spec)
        wid = f"w{next(self._ids):06d}"
        view = {
            "id": wid,
            "owner": owner,
            "name": s.name,
            "type": s.type.value,
            "priority": s.priority,
            "state": "queued",
            "requirements": s.requirements.model_dump(mode="json"),
            "sla": s.sla.model_dump(mode="json"),
            "interruptible": s.interruptible,
            "duration_seconds": s.duration_seconds,
            "device_id": None,
            "created_at": self.clock.now().isoformat(),
            "scheduled_at": None,
            "started_at": None,
            "finished_at": None,
            "gpu_seconds": 0.0,
            "cost_micro_usd": 0,
            "preempted_mining": False,
            "detail": "",
        }
        self.items[wid] = view
        if idempotency_key is not None:
            self.keys[(owner, idempotency_key)] = wid
        return dict(view)

    async def get(self, workload_id: str) -> dict[str, Any]:
        try:
            return dict(self.items[workload_id])
        except KeyError:
            raise WorkloadNotFoundError(
                f"no workload {workload_id!r}", workload_id=workload_id
            ) from None

    async def list(
        self, owner: str | None, state: str | None, type: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        rows = [
            v
            for k, v in sorted(self.items.items())
            if (owner is None or v["owner"] == owner)
            and (state is None or v["state"] == state)
            and (type is None or v["type"] == type)
            and (cursor is None or k > cursor)
        ]
        page = rows[:limit]
        return {
            "items": [dict(v) for v in page],
            "next_cursor": page[-1]["id"] if len(rows) > limit else None,
        }

    async def cancel(self, workload_id: str) -> dict[str, Any]:
        view = self.items.get(workload_id)
        if view is None:
            raise WorkloadNotFoundError(f"no workload {workload_id!r}", workload_id=workload_id)
        if view["state"] in ("completed", "failed", "cancelled"):
            raise WorkloadTransitionError(f"workload {workload_id} is already {view['state']}")
        view["state"] = "cancelled"
        return dict(view)

    async def usage(self, owner: str | None) -> dict[str, Any]:
        rows = [v for v in self.items.values() if owner is None or v["owner"] == owner]
        return {
            "gpu_seconds": sum(v["gpu_seconds"] for v in rows),
            "cost_micro_usd": sum(v["cost_micro_usd"] for v in rows),
            "workloads": len(rows),
        }


class _Method:
    """``handle.method.remote(...)`` over a plain function: an awaitable, as Ray's is."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        self._fn = fn

    def remote(self, *args: Any) -> Any:
        async def call() -> Any:
            return self._fn(*args)

        return call()


class CoreRouterHandle:
    """What RouterActor answers (its typed messages) over the real router core and store,
    without Ray: admissions batched and committed as the actor does, one store refusal
    failing its item alone."""

    def __init__(self, repo: WorkloadRepository, clock: Any = None) -> None:
        from hcp.workloads.metering import PriceTable
        from hcp.workloads.router import WorkloadRouter

        self.repo = repo
        self.core = WorkloadRouter(repo, PriceTable({}, 1_000_000), clock,
                                   fleet=repo.gpu_inventory())
        self.batches: list[int] = []
        self.submit_batch = _Method(self._submit_batch)
        self.cancel = _Method(self._cancel)
        self.usage = _Method(lambda owner=None: self.repo.usage(owner))

    def _submit_batch(self, items: list[tuple[str, dict[str, Any], str | None]]) -> list[Any]:
        self.batches.append(len(items))
        self.core.preload_keys([(o, k) for o, _, k in items if k is not None])
        answers, _ = self.core.admit_batch(items)
        refused = self.core.commit(self.core.drain())
        return [InvalidWorkloadError("the store cannot hold this workload's fields")
                if isinstance(a, Admission) and a.workload.id in refused else a for a in answers]

    def _cancel(self, workload_id: str) -> Any:
        w = self.core.cancel(workload_id, "cancelled by request")
        self.core.flush()
        return w


def router_workloads(handle: CoreRouterHandle, settings: Settings | None = None) -> Any:
    """The API's real adapter (``RouterWorkloads``) over a core-backed router handle."""
    from serve_apps.backends import RouterWorkloads

    backend = RouterWorkloads(settings or Settings(), handle.repo)
    backend._handle = handle  # what find_router would have returned
    return backend


class FakeFleet:
    """Facility reports shaped like FacilityActor.report(); switches commit to the real store."""

    def __init__(self, repo: FleetRepository) -> None:
        self.repo = repo
        self.modes = {"g0": GpuMode.MINING, "g1": GpuMode.MINING}
        self.asics = {"s21-0": GpuMode.MINING}

    def _gpu(self, gid: str) -> GpuStatus:
        tel = TelemetrySample(300.0, 55.0, 50.0, 1024.0, 81920.0, "simulated", datetime.now(UTC))
        return GpuStatus(gid, "lab", self.modes[gid], 0, hashrate_hs=1000.0, utilization=0.5,
                         telemetry=tel)

    async def facility_reports(self) -> list[FacilityReport]:
        gpus = [self._gpu(g) for g in self.modes]
        return [
            FacilityReport(
                facility="lab", capacity_w=10_000.0, pue=1.2, it_power_w=600.0,
                facility_power_w=720.0, headroom_w=9280.0, over_cap=False,
                gpu_modes={}, asic_modes={}, gpu_hashrate_hs=2000.0, asic_hashrate_ths=0.0,
                gpus=gpus, asics=dict(self.asics),
            )
        ]

    async def set_mode(self, device_id: str, mode: str, reason: str,
                       correlation_id: str | None = None) -> SwitchResult:
        if device_id not in self.modes:
            raise UnknownDeviceError(f"no device {device_id!r}", device_id=device_id)
        before, after = self.modes[device_id], GpuMode(mode)
        report = SwitchReport(
            device_id,
            before,
            after,
            SwitchPhases(0.1, 0.1, 0.2, 0.1),
            0.5,
            datetime.now(UTC),
            reason,
            noop=before is after,
        )
        gen = self.repo.device_state(device_id).generation
        if before is not after:
            gen = self.repo.commit_mode_change(report, gen, facility="lab",
                                               correlation_id=correlation_id)
            self.modes[device_id] = after
        return SwitchResult(report, gen, facility="lab", correlation_id=correlation_id)


class FakeEconomics:
    def __init__(self, available: bool = True) -> None:
        self.available = available

    async def profitability(self) -> dict[str, Any]:
        from hcp.errors import OptimizerUnavailableError

        if not self.available:
            raise OptimizerUnavailableError("the optimizer is not running")
        return {"tick": 1, "devices": {"g0": {"MINING": 1.25, "INFERENCE": 2.5}}}


class FakeEmbedder:
    """Deterministic vectors; counts one token per word plus two special tokens per text."""

    def __init__(self, usage: SqlUsageLedger, model: str) -> None:
        self.usage = usage
        self.model = model
        self.calls: list[tuple[str, list[str]]] = []

    async def embed(self, owner: str, texts: list[str]) -> tuple[list[list[float]], int]:
        self.calls.append((owner, list(texts)))
        vectors = [[float(len(t)), float(i), 0.5] for i, t in enumerate(texts)]
        tokens = sum(len(t.split()) + 2 for t in texts)
        self.usage.add(owner, self.model, 1, tokens)
        return vectors, tokens


@dataclass
class Harness:
    app: FastAPI
    services: ApiServices
    tokens: TokenService
    repo: FleetRepository
    workloads: Any
    fleet: FakeFleet
    economics: FakeEconomics
    clock: FixedClock
    settings: Settings
    router: CoreRouterHandle | None = None  # with ``real_router``: the core behind the API
    headers_cache: dict[tuple[Role, str], dict[str, str]] = field(default_factory=dict)

    def headers(self, role: Role, subject: str | None = None) -> dict[str, str]:
        key = (role, subject or f"{role.value}-1")
        if key not in self.headers_cache:
            self.headers_cache[key] = {"Authorization": f"Bearer {self.tokens.issue(key[1], role)}"}
        return self.headers_cache[key]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test"
        )


def make_harness(tmp_path: Path, database_url: str | None = None, *, real_router: bool = False,
                 mount_areas: bool = False, **overrides: Any) -> Harness:
    """The platform app over fakes (or, with ``real_router``, the real router core and store;
    with ``mount_areas``, the notary's and marketplace's routers beside it)."""
    if database_url is None:
        from tests.conftest import migrated_sqlite_url

        database_url = migrated_sqlite_url(tmp_path, "api.db")
    url = database_url
    settings = Settings(home=tmp_path, database_url=url, jwt_secret=SECRET, **overrides)
    engine = connect(url)
    migrate(engine)
    repo = FleetRepository(engine)
    repo.sync_fleet(parse_fleet_spec(SPEC, "unit"))
    clock = FixedClock()
    tokens = TokenService(SECRET, clock=clock)
    router = CoreRouterHandle(WorkloadRepository(engine), clock) if real_router else None
    workloads: Any = router_workloads(router, settings) if router else FakeWorkloads(clock)
    fleet, economics = FakeFleet(repo), FakeEconomics()
    usage = SqlUsageLedger(engine)
    services = ApiServices(
        workloads=workloads,
        fleet=fleet,
        economics=economics,
        switch_log=StoreSwitchLog(repo),
        feed=StoreEventFeed(engine),
        usage=usage,
        limiter=LeasedRateLimiter(MemoryRateLimiter(), blocking_io=False),
        embedder=FakeEmbedder(usage, settings.fleet.inference_model),
        model_name=settings.fleet.inference_model,
        clock=clock,
        run_logs=SqlRunStore(engine),
        # The store's history (no Prometheus in the unit tier), on the harness's clock.
        history=HistoryService(SqlHistory(engine), None, "store", clock),
    )
    extra = []
    if mount_areas:
        from serve_apps.factory import other_app_routers

        extra = other_app_routers(settings)
    app = build_app(services, tokens, settings, extra)
    return Harness(app, services, tokens, repo, workloads, fleet, economics, clock, settings,
                   router=router)


def later(clock: FixedClock, seconds: float) -> None:
    clock.t = clock.t + timedelta(seconds=seconds)
