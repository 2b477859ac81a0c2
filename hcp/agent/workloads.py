"""Platform workloads that carry a container, run by the provider agent as if they were jobs.

A batch or training workload may name an image CID and a command (``WorkloadSpec.container``).
The router places it on a GPU and holds that GPU for it; the operator's agent then runs its
container there with everything a rental gets (the image pulled by CID and verified, the
lock-down, live logs and metrics, crash-safe reconcile), through ``WorkloadMarketplace``, a
``MarketplacePort`` over the router: no escrow moves, the router meters the cost, and the
workload ends when the container exits (completed on exit code 0, failed otherwise).
Cancelling the workload (or its preemption) ends the "job", so the agent stops the container.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from hcp.agent.messages import InstanceSpec, JobInfo, OfferLimits, RunRecord, Slot
from hcp.agent.settings import AgentSettings
from hcp.agent.store import SqlRunStore
from hcp.clock import Clock, SystemClock
from hcp.errors import JobNotFoundError
from hcp.marketplace.jobs import JobStatus
from hcp.workloads.types import Workload, WorkloadState

SLOT_PREFIX = "workload-gpu:"
PLATFORM = "platform"  # the "provider" of a platform workload


class WorkloadSource(Protocol):
    """The router, as the agent needs it (``actors.agent.RouterWorkloadSource`` over the actor)."""

    def container_workloads(self, device_ids: Collection[str]) -> list[Workload]:
        """Running workloads with a container, placed on these GPUs."""

    def get(self, workload_id: str) -> Workload | None: ...

    def container_started(self, workload_id: str) -> Workload:
        """Its container runs: the router meters it from now (idempotent)."""

    def finish(self, workload_id: str, ok: bool, detail: str) -> Workload | None:
        """End the workload (its cost metered to now); None if it had already ended."""


def workload_slots(gpus: Collection[tuple[str, str | None]]) -> list[Slot]:
    """One slot per fleet GPU (id, model) the agent may run workload containers on."""
    return [Slot(f"{SLOT_PREFIX}{gpu_id}", gpu_id, None, model) for gpu_id, model in gpus]


class WorkloadMarketplace:
    """``MarketplacePort`` over the router: a workload with a container is a job to the agent.

    RUNNING in the router and its container not started yet reads as ACCEPTED (ready to
    launch); once the agent started its container (the router's ``container_started_at``,
    kept in its store, so an agent or router restart reads the same), RUNNING. Ended, or back
    in the queue (preempted), reads as not live, so the agent stops the container.
    ``complete`` and ``cancel`` end the workload with the container's outcome, read from the
    run record.
    """

    def __init__(self, source: WorkloadSource, slots: Collection[Slot], settings: AgentSettings,
                 run_of: Callable[[str], RunRecord | None], clock: Clock | None = None) -> None:
        self.source = source
        self.slots = {s.offer_id: s for s in slots}
        self.settings = settings
        self._run_of = run_of
        self.clock = clock or SystemClock()

    def _info(self, w: Workload) -> JobInfo:
        if w.state is WorkloadState.RUNNING:
            status = JobStatus.RUNNING if w.container_started_at is not None \
                else JobStatus.ACCEPTED
        else:
            # Ended, or requeued (preempted): not the agent's to run any more. A requeued one
            # placed again later is a fresh launch (the router cleared its container start).
            status = JobStatus.COMPLETED if w.state is WorkloadState.COMPLETED \
                else JobStatus.CANCELLED
        return JobInfo(id=w.id, offer_id=f"{SLOT_PREFIX}{w.device_id}", renter=w.owner,
                       provider=PLATFORM, image_cid=str((w.container or {}).get("image_cid", "")),
                       status=status, estimated_seconds=w.duration_seconds,
                       created_at=w.created_at, started_at=w.container_started_at,
                       ended_at=w.finished_at)

    def open_jobs(self) -> list[JobInfo]:
        gpus = [s.gpu_id for s in self.slots.values()]
        return [self._info(w) for w in self.source.container_workloads(gpus)
                if w.container is not None]

    def job(self, job_id: str) -> JobInfo | None:
        w = self.source.get(job_id)
        return None if w is None or w.container is None else self._info(w)

    def offer(self, offer_id: str) -> OfferLimits:
        slot = self.slots.get(offer_id)
        if slot is None:
            raise JobNotFoundError(f"no workload GPU {offer_id!r} on this agent")
        a = self.settings
        return OfferLimits(offer_id, slot.gpu_model or "", a.workload_vcpu, a.workload_memory_gb,
                           a.workload_storage_gb)

    def accept(self, job_id: str) -> JobInfo:
        return self._must(job_id)  # placed by the router: nothing to accept

    def start(self, job_id: str) -> JobInfo:
        """The container runs: the router meters the workload from now, not from its
        placement (the image pull before it is not billed)."""
        return self._info(self.source.container_started(job_id))

    def complete(self, job_id: str, usage_seconds: int) -> JobInfo:
        run = self._run_of(job_id)
        code = run.exit_code if run is not None else None
        if run is not None and run.reason is not None and run.reason.value != "exited":
            detail = f"container {run.reason.value} after {usage_seconds} s: {run.detail or ''}"
        elif code is not None:
            detail = f"container exited with code {code} after {usage_seconds} s"
        else:
            detail = f"container ended after {usage_seconds} s"
        return self._end(job_id, code == 0, detail.strip().rstrip(":"))

    def cancel(self, job_id: str) -> JobInfo:
        run = self._run_of(job_id)
        why = f"{run.reason.value}: {run.detail}" if run is not None and run.reason is not None \
            else "see its run record"
        return self._end(job_id, False, f"the container could not run ({why})")

    def _end(self, job_id: str, ok: bool, detail: str) -> JobInfo:
        self.source.finish(job_id, ok, detail)
        return self._must(job_id)

    def _must(self, job_id: str) -> JobInfo:
        info = self.job(job_id)
        if info is None:
            raise JobNotFoundError(f"no workload {job_id!r} with a container")
        return info


class WorkloadRuns(SqlRunStore):
    """The run records of workload containers (the same tables as rentals'); the command comes
    from the workload's own spec."""

    def __init__(self, engine, source: WorkloadSource) -> None:  # type: ignore[no-untyped-def]
        super().__init__(engine)
        self._source = source

    def instance_spec(self, job_id: str) -> InstanceSpec | None:
        w = self._source.get(job_id)
        if w is None or w.container is None:
            return None
        command = w.container.get("command")
        return InstanceSpec(command=tuple(command) if command else None)


class HeldByRouter:
    """``GpuLease`` for workload containers: the router already holds the GPU for the workload
    (``hcp.fleet.holds``), so the agent takes nothing and gives nothing back."""

    def enter_rented(self, gpu_id: str, job_id: str) -> None:
        return None

    def leave_rented(self, gpu_id: str, job_id: str) -> None:
        return None

    def holder(self, gpu_id: str) -> str | None:
        return None
