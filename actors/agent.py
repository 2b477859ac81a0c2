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
from typing import Any

import ray

from actors.handles import FleetClient
from actors.options import agent_actor_name, agent_actor_options
from hcp.agent.agent import ProviderAgent, StepReport
from hcp.config import Settings
from hcp.errors import NotFoundError
from hcp.fleet.holds import Hold, HoldKind
from hcp.logging_setup import configure_for

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


@ray.remote
class AgentActor:
    def __init__(self, settings: Settings, gpus: dict[str, Any]) -> None:
        from actors.escrow import RemoteEscrow
        from hcp.agent.build import local_agent
        from hcp.marketplace.service import MarketplaceService
        from hcp.store.db import engine_for

        configure_for(settings)
        engine = engine_for(settings.resolved_database_url)  # migrated by the platform's launch
        service = MarketplaceService(engine, RemoteEscrow(settings), settings)
        self._agent: ProviderAgent = local_agent(settings, service, FleetGpuLease(FleetClient(dict(gpus))))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._agent.run, args=(self._stop,), name="agent",
                                        daemon=True)
        self._thread.start()

    def step(self) -> StepReport:
        """One step now (tests, an operator's nudge); the loop runs them on its own too."""
        return self._agent.step()

    def active(self) -> dict[str, str]:
        """job id -> GPU id of the jobs this agent runs now."""
        return self._agent.active()

    def preempt(self, gpu_id: str, detail: str) -> bool:
        """The explicit, recorded preemption of the job on ``gpu_id`` (paid for the time it ran,
        the rest refunded); False when no job holds it."""
        return self._agent.preempt(gpu_id, detail)

    def ready(self) -> str:
        return self._agent.identity.agent_id

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._agent.close()  # containers keep running: a new agent adopts them


def launch_agent(settings: Settings, fleet: FleetClient) -> Any:
    """Start (or find) this node's agent over the fleet's GPU actors; returns once it is up."""
    from hcp.agent.build import agent_id

    unknown = sorted({s.gpu_id for s in settings.agent.slots} - set(fleet.gpus))
    if unknown:
        raise NotFoundError(f"HCP_AGENT__SLOTS name GPUs the fleet does not have: {unknown}")
    name = agent_id(settings)
    handle = AgentActor.options(**agent_actor_options(settings, name)).remote(settings, dict(fleet.gpus))
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
