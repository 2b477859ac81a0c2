"""Typed messages of the provider agent: jobs as it sees them, container specs and states,
run records, log lines and metric samples."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hcp.marketplace.jobs import JobStatus

LIVE_STATUSES = frozenset({JobStatus.ACCEPTED, JobStatus.RUNNING})


class NetworkMode(str, enum.Enum):
    NONE = "none"      # no network at all
    EGRESS = "egress"  # outbound only: no published ports, no traffic between containers


class Phase(str, enum.Enum):
    PULLING = "PULLING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"    # the container runs and billing has started
    STOPPING = "STOPPING"
    SETTLED = "SETTLED"    # the job is closed in the marketplace and the container is gone
    FAILED = "FAILED"      # never ran: refunded


class Reason(str, enum.Enum):
    EXITED = "exited"                        # the container ended by itself
    STOPPED_BY_RENTER = "stopped_by_renter"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"
    MAX_DURATION = "max_duration"            # the escrow's maximum was reached: killed
    PREEMPTED = "preempted"
    IMAGE_TAMPERED = "image_tampered"
    IMAGE_UNAVAILABLE = "image_unavailable"
    IMAGE_INVALID = "image_invalid"
    START_FAILED = "start_failed"
    CONTAINER_LOST = "container_lost"        # gone from the engine while the job ran
    ORPHANED = "orphaned"                    # a container whose job does not exist


@dataclass(frozen=True)
class Slot:
    offer_id: str
    gpu_id: str
    device_index: int | None = None
    gpu_model: str | None = None


@dataclass(frozen=True)
class JobInfo:
    id: str
    offer_id: str
    renter: str
    provider: str
    image_cid: str
    status: JobStatus
    estimated_seconds: int
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    final_cost: int | None = None


@dataclass(frozen=True)
class OfferLimits:
    offer_id: str
    gpu_model: str
    vcpu: int
    memory_gb: int
    storage_gb: int


@dataclass(frozen=True)
class InstanceSpec:
    """What the renter asked of the container besides the image (``POST /instances``)."""

    network: NetworkMode = NetworkMode.NONE
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PulledImage:
    cid: str
    image_id: str  # the config's digest: the Engine's image ID
    cached: bool   # already loaded in the Engine: no docker load
    fetched_blocks: int = 0
    volumes: tuple[str, ...] = ()  # the image's declared volumes (each gets a tmpfs)


@dataclass(frozen=True)
class EngineCaps:
    nvidia: bool       # the NVIDIA container runtime is installed
    disk_quota: bool   # overlay2 on xfs with pquota: --storage-opt size works
    cpus: int = 0      # the host's CPUs (the Engine refuses a CPU limit above them); 0: unknown


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    labels: Mapping[str, str]
    nano_cpus: int
    mem_bytes: int
    pids_limit: int
    network: NetworkMode
    tmpfs: Mapping[str, str]
    storage_bytes: int | None  # a root quota, only where the engine enforces one
    gpu_device: str | None     # NVIDIA device id for a device request; None: simulated
    simulated_gpu: bool


class ContainerStatus(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    MISSING = "missing"


@dataclass(frozen=True)
class ContainerState:
    id: str
    status: ContainerStatus
    labels: Mapping[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    health: str | None = None  # the image's HEALTHCHECK status, if it has one

    @property
    def run_seconds(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0, int((self.finished_at - self.started_at).total_seconds()))


@dataclass(frozen=True)
class RawLine:
    """One Docker log message: its stream, the Engine's timestamp (ns) and text."""

    stream: str  # "stdout" | "stderr"
    ts_ns: int
    text: str
    partial: bool = False  # Docker split a longer line here (no newline at its end)


@dataclass(frozen=True)
class LogLine:
    seq: int
    stream: str
    ts_ns: int
    text: str
    partial: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "stream": self.stream, "ts_ns": self.ts_ns, "text": self.text,
                "partial": self.partial}


@dataclass(frozen=True)
class ResumePoint:
    """Where a log capture picks up: re-read the Engine's log from ``since_s`` (UNIX seconds),
    skip the first ``skip`` messages (they are stored), number the rest from ``next_seq``."""

    next_seq: int
    since_s: int
    skip: int


@dataclass(frozen=True)
class MetricSample:
    seq: int
    at: datetime
    cpu_pct: float  # of one core (200 = two cores busy)
    mem_bytes: int
    mem_limit_bytes: int
    pids: int
    gpu: Mapping[str, Any]  # telemetry sample: source "nvml" or "simulated"

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "cpu_pct": self.cpu_pct,
                "mem_bytes": self.mem_bytes, "mem_limit_bytes": self.mem_limit_bytes,
                "pids": self.pids, "gpu": dict(self.gpu)}


@dataclass(frozen=True)
class StatsReading:
    """One Docker stats reading (cumulative CPU counters; the sampler takes deltas)."""

    at: datetime
    cpu_total_ns: int
    system_total_ns: int
    online_cpus: int
    mem_bytes: int
    mem_limit_bytes: int
    pids: int


@dataclass(frozen=True)
class RunRecord:
    """The agent's durable record of one job's container: the evidence beside the job."""

    job_id: str
    agent_id: str
    provider: str
    gpu_id: str
    phase: Phase
    updated_at: datetime
    container_id: str | None = None
    image_id: str | None = None
    reason: Reason | None = None
    detail: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    simulated_gpu: bool = False
    network: NetworkMode = NetworkMode.NONE
    container_started_at: datetime | None = None
    container_finished_at: datetime | None = None
    usage_seconds: int | None = None

    def but(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        return {"job_id": self.job_id, "agent_id": self.agent_id, "provider": self.provider,
                "gpu_id": self.gpu_id, "phase": self.phase.value, "updated_at": t(self.updated_at),
                "container_id": self.container_id, "image_id": self.image_id,
                "reason": None if self.reason is None else self.reason.value,
                "detail": self.detail, "exit_code": self.exit_code, "oom_killed": self.oom_killed,
                "simulated_gpu": self.simulated_gpu, "network": self.network.value,
                "container_started_at": t(self.container_started_at),
                "container_finished_at": t(self.container_finished_at),
                "usage_seconds": self.usage_seconds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunRecord:
        def t(v: Any) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        return cls(job_id=d["job_id"], agent_id=d["agent_id"], provider=d["provider"],
                   gpu_id=d["gpu_id"], phase=Phase(d["phase"]), updated_at=t(d["updated_at"]),  # type: ignore[arg-type]
                   container_id=d.get("container_id"), image_id=d.get("image_id"),
                   reason=None if d.get("reason") is None else Reason(d["reason"]),
                   detail=d.get("detail"), exit_code=d.get("exit_code"),
                   oom_killed=bool(d.get("oom_killed", False)),
                   simulated_gpu=bool(d.get("simulated_gpu", False)),
                   network=NetworkMode(d.get("network", "none")),
                   container_started_at=t(d.get("container_started_at")),
                   container_finished_at=t(d.get("container_finished_at")),
                   usage_seconds=d.get("usage_seconds"))
