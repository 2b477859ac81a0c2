"""The operator's provider agent as a Ray actor: a thin shell over ``hcp.agent.ProviderAgent``.

One per node whose GPUs are rented out (``HCP_AGENT__SLOTS`` name the offers and the fleet's
GPU ids). It runs the marketplace in process (the escrow through the ledger actor) and puts a
job's GPU in RENTED through the GPU actor's hold (``FleetGpuLease``), so while a customer's
container runs the optimizer, the power-cap step and the router cannot take that GPU. A
restarted actor reconciles its containers by label against the job records before anything else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import Any

import ray

from actors.handles import FleetClient, get
from actors.options import agent_actor_name, agent_actor_options
from hcp.agent.agent import ProviderAgent, StepReport
from hcp.config import Settings
from hcp.errors import (
    DeviceUnavailableError,
    NotFoundError,
    WorkloadNotFoundError,
    WorkloadTransitionError,
)
from hcp.fleet.holds import Hold, HoldKind
from hcp.logging_setup import configure_for
from hcp.workloads.types import Workload

log = logging.getLogger(__name__)


class FleetGpuLease:
    """``hcp.agent.ports.GpuLease`` over the fleet's GPU actors: RENTED is the GPU's job hold."""

    def __init__(self, fleet: FleetClient) -> None:
        self._fleet = fleet

    def enter_rented(self, gpu_id: str, job_id: str) -> None:
        self._fleet.hold(gpu_id, Hold.job(job_id), f"rented to job {job_id}")

    def leave_rented(self, gpu_id: str, job_id: str) -> None:
        self._fleet.release(gpu_id, Hold.job(job_id), reason=f"job {job_id} ended")

    def holder(self, gpu_id: str) -> str | None:
        h = self._fleet.status(gpu_id).holder
        return h.id if h is not None and h.kind is HoldKind.JOB else None


class RouterWorkloadSource:
    """``hcp.agent.workloads.WorkloadSource`` over the router actor (found by name, again after
    it restarts)."""

    def __init__(self, settings: Settings, timeout_s: float = 30.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._handle: Any = None

    def _router(self) -> Any:
        if self._handle is None:
            from actors.router import find_router

            self._handle = find_router(self._settings)
        return self._handle

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return get(getattr(self._router(), method).remote(*args), "router", self._timeout_s)
        except DeviceUnavailableError:
            self._handle = None  # look it up again next time
            raise

    def container_workloads(self, device_ids: Collection[str]) -> list[Workload]:
        return list(self._call("container_workloads", list(device_ids)))

    def get(self, workload_id: str) -> Workload | None:
        try:
            return self._call("get", workload_id)
        except WorkloadNotFoundError:
            return None

    def container_started(self, workload_id: str) -> Workload:
        return self._call("container_started", workload_id)  # type: ignore[no-any-return]

    def finish(self, workload_id: str, ok: bool, detail: str) -> Workload | None:
        try:
            return self._call("complete", workload_id, ok, detail)
        except WorkloadTransitionError:  # it had ended already (cancelled, expired)
            return None


@ray.remote
class AgentActor:
    def __init__(self, settings: Settings, gpus: dict[str, Any],
                 models: dict[str, str] | None = None) -> None:
        from actors.escrow import RemoteEscrow
        from hcp.agent.build import agent_id, local_agent, workload_agent
        from hcp.marketplace.service import MarketplaceService
        from hcp.store.db import engine_for

        configure_for(settings)
        engine = engine_for(settings.resolved_database_url)  # migrated by the platform's launch
        service = MarketplaceService(engine, RemoteEscrow(settings), settings)
        from actors.metrics_sink import RaySink

        sink = RaySink()  # the catalogue's agent series, through Ray's metrics agent
        self._agents: list[ProviderAgent] = []
        if settings.agent.slots:
            self._agents.append(local_agent(settings, service,
                                            FleetGpuLease(FleetClient(dict(gpus))), metrics=sink))
        if settings.agent.workloads:
            # Its own identity: each agent reconciles only the containers labelled as its own.
            self._agents.append(workload_agent(
                settings, engine, RouterWorkloadSource(settings),
                [(g, (models or {}).get(g)) for g in sorted(gpus)], f"{agent_id(settings)}-wl",
                metrics=sink))
        self._agent = self._agents[0]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=a.run, args=(self._stop,), name=f"agent-{i}",
                                          daemon=True) for i, a in enumerate(self._agents)]
        self.link = None
        if settings.agent.slots and settings.oracle.enabled:
            # The rental provider's heartbeats and challenge answers, to the validator actors.
            from actors.validator import RayOracle
            from hcp.agent.build import oracle_link
            from hcp.clock import SystemClock
            from hcp.oracle.identities import IdentityBook

            self.link = oracle_link(settings, self._agent,
                                    RayOracle(settings, IdentityBook(engine, SystemClock())))
            self._threads.append(threading.Thread(target=self.link.run, args=(self._stop,),
                                                  name="agent-oracle", daemon=True))
        for t in self._threads:
            t.start()

    def step(self) -> list[StepReport]:
        """One step of each agent now (tests, an operator's nudge); the loops run them too."""
        return [a.step() for a in self._agents]

    def active(self) -> dict[str, str]:
        """job (or workload) id -> GPU id of what this node's agents run now."""
        out: dict[str, str] = {}
        for a in self._agents:
            out.update(a.active())
        return out

    def preempt(self, gpu_id: str, detail: str) -> bool:
        """The explicit, recorded preemption of the job on ``gpu_id`` (paid for the time it ran,
        the rest refunded); False when no job holds it."""
        return any(a.preempt(gpu_id, detail) for a in self._agents)

    def oracle_step(self) -> Any:
        """One oracle step now (a heartbeat and the mailbox; tests, an operator's nudge)."""
        return None if self.link is None else self.link.step(force=True)

    def ready(self) -> str:
        return self._agent.identity.agent_id

    def shutdown(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        for a in self._agents:
            a.close()  # containers keep running: a new agent adopts them


def launch_agent(settings: Settings, fleet: FleetClient, models: dict[str, str] | None = None) -> Any:
    """Start (or find) this node's agent over the fleet's GPU actors; returns once it is up.
    ``models``: GPU id -> model, for the workload containers' slots."""
    from hcp.agent.build import agent_id

    unknown = sorted({s.gpu_id for s in settings.agent.slots} - set(fleet.gpus))
    if unknown:
        raise NotFoundError(f"HCP_AGENT__SLOTS name GPUs the fleet does not have: {unknown}")
    name = agent_id(settings)
    handle = AgentActor.options(**agent_actor_options(settings, name)).remote(
        settings, dict(fleet.gpus), dict(models or {}))
    ray.get(handle.ready.remote(), timeout=settings.ray.start_timeout_seconds)
    return handle


def find_agent(settings: Settings) -> Any:
    from hcp.agent.build import agent_id

    try:
        return ray.get_actor(agent_actor_name(agent_id(settings)), namespace=settings.ray.namespace)
    except ValueError:
        raise NotFoundError("no provider agent runs on this node") from None


def stop_agent(handle: Any) -> None:
    try:
        ray.get(handle.shutdown.remote(), timeout=60)
    except Exception:  # stopping anyway
        log.exception("agent did not stop cleanly")
    ray.kill(handle, no_restart=True)
