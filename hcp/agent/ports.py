"""What the provider agent talks to, as Protocols: the marketplace, Docker Engine, the image
store, the run records (logs and metrics included) and the GPU's RENTED lease.

Each has a real implementation in this package (``local_market``/``http_ports``,
``docker_engine``, ``images``, ``store``/``http_ports``, ``leases``); the lead's actor shell
supplies the GPU actor's ``GpuLease``. Tests drive the agent through fakes of the same shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from hcp.agent.messages import (
    ContainerSpec,
    ContainerState,
    EngineCaps,
    InstanceSpec,
    JobInfo,
    LogLine,
    MetricSample,
    OfferLimits,
    PulledImage,
    RawLine,
    ResumePoint,
    RunRecord,
    StatsReading,
)


class MarketplacePort(Protocol):
    """The job lifecycle as this provider sees it. Money is decided by the marketplace: the
    agent only calls its operations (each a state transition, so a job completes once)."""

    def open_jobs(self) -> list[JobInfo]:
        """This provider's jobs in CREATED, ACCEPTED or RUNNING."""

    def job(self, job_id: str) -> JobInfo | None:
        """One job (None: the marketplace has no such job)."""

    def offer(self, offer_id: str) -> OfferLimits: ...

    def accept(self, job_id: str) -> JobInfo: ...

    def start(self, job_id: str) -> JobInfo:
        """The container runs: the billing clock starts."""

    def complete(self, job_id: str, usage_seconds: int) -> JobInfo:
        """Bill min(time since start, estimate, usage); the rest of the escrow is refunded."""

    def cancel(self, job_id: str) -> JobInfo:
        """Before start only: everything is refunded."""


class ContainerPort(Protocol):
    """Docker Engine. Every call may raise ``ContainerEngineError`` (the engine is down)."""

    def capabilities(self) -> EngineCaps: ...

    def create(self, spec: ContainerSpec) -> str:
        """The container's id; the id of the existing one if ``spec.name`` is taken."""

    def start(self, container_id: str) -> None: ...

    def inspect(self, container_id: str) -> ContainerState:
        """Status MISSING when the engine no longer has it."""

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace; no error if it already ended."""

    def remove(self, container_id: str) -> None:
        """Gone (killed first if it runs); no error if it already is."""

    def list_managed(self, agent_id: str) -> list[ContainerState]:
        """Every container (running or not) labelled as this agent's."""

    def follow_logs(self, container_id: str, since_s: int) -> Iterator[RawLine]:
        """Log messages from ``since_s`` on, in the Engine's order, following until the
        container ends (then the iterator ends) or the engine drops the stream (it raises)."""

    def stats(self, container_id: str) -> StatsReading | None:
        """One reading now (None if the container is not running)."""


class ImagePort(Protocol):
    def ensure(self, cid: str, job_id: str) -> PulledImage:
        """The image at ``cid`` loaded in the Engine, every block verified; held for the job.
        Raises ``TamperedImageError``, ``InvalidImageError``, ``PeerFetchError``... with a
        reason the renter can read."""

    def release(self, job_id: str) -> None:
        """The job no longer needs its image's blocks held."""


class RunStore(Protocol):
    """Durable records beside the job: the run, its log lines and metric samples (the
    evidence of a dispute). Appends are idempotent by (job, seq): a retry stores nothing twice."""

    def instance_spec(self, job_id: str) -> InstanceSpec | None: ...

    def save_run(self, run: RunRecord) -> None: ...

    def get_run(self, job_id: str) -> RunRecord | None: ...

    def runs_of(self, agent_id: str, unsettled_only: bool = True) -> list[RunRecord]: ...

    def append_logs(self, job_id: str, lines: list[LogLine]) -> None: ...

    def log_resume(self, job_id: str, margin_s: int) -> ResumePoint: ...

    def append_metrics(self, job_id: str, samples: list[MetricSample]) -> None: ...

    def next_metric_seq(self, job_id: str) -> int: ...

    def last_evidence_at(self, job_id: str) -> datetime | None:
        """When the job's container was last seen alive (latest log line or sample)."""


class GpuLease(Protocol):
    """The GPU actor's RENTED mode, as the agent needs it (the lead's actor shell implements
    it over the GPU actor; ``hcp.agent.leases.LocalGpuLease`` serves hosts without a fleet).

    Entering RENTED from MINING pauses mining at a batch boundary as a switch to INFERENCE
    does; the actor records which job holds the GPU; nothing but ``leave_rented`` by that job
    (or an explicit, recorded preemption that calls ``ProviderAgent.preempt``) takes it back.
    """

    def enter_rented(self, gpu_id: str, job_id: str) -> None:
        """Hand the GPU to ``job_id``. Idempotent for the job that holds it; ``GpuBusyError``
        if another job or a workload holds it, or it cannot be rented now (curtailed)."""

    def leave_rented(self, gpu_id: str, job_id: str) -> None:
        """``job_id`` ended: the GPU returns to the platform. A no-op unless it holds it."""

    def holder(self, gpu_id: str) -> str | None:
        """The job holding the GPU in RENTED, if any (reconcile frees GPUs of ended jobs)."""


class CachePort(Protocol):
    """This node's image cache policy (``hcp.images.cache.ImageCache``): ``step`` runs a period
    when one is due (or ``force``) and answers what it did, or None."""

    def step(self, force: bool = False) -> Any: ...
