"""Typed messages of the workloads domain: what a customer submits and what the router records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from hcp.fields import AwareDatetime, SafeStr, StrictPositive

REAL_TIME_PRIORITY = 8  # priority >= this is "real-time": served first, may preempt mining
MAX_DURATION_SECONDS = 7 * 86400


class WorkloadType(str, Enum):
    INFERENCE = "inference"
    EMBEDDING = "embedding"
    TRAINING = "training"
    BATCH = "batch"


class WorkloadState(str, Enum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({WorkloadState.COMPLETED, WorkloadState.FAILED, WorkloadState.CANCELLED})
ACTIVE_STATES = frozenset({WorkloadState.QUEUED, WorkloadState.SCHEDULED, WorkloadState.RUNNING})


class Requirements(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu_model: SafeStr | None = Field(default=None, min_length=1, max_length=64,
                                      description="GPU model the workload needs, e.g. 'H100'.")
    min_memory_gb: StrictPositive | None = Field(default=None, le=4096,
                                                 description="Minimum GPU memory.")
    facility: SafeStr | None = Field(default=None, min_length=1, max_length=64,
                                     description="Preferred facility (locality); not a hard "
                                     "constraint.")


class Sla(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_latency_ms: StrictPositive | None = Field(
        default=None, le=3_600_000,
        description="Longest wait from admission to the first start; past it the workload fails.",
    )
    deadline: AwareDatetime | None = Field(
        default=None,
        description="When the work must be finished (timezone-aware); a workload that can no "
        "longer finish by then fails instead of running late.",
    )


_CONTAINER_TYPES = frozenset({WorkloadType.BATCH, WorkloadType.TRAINING})


class Container(BaseModel):
    """Real work for a batch or training workload: an image by CID (uploaded through
    ``/api/v1/images``) and the command to run in it, on the GPU the router chooses."""

    model_config = ConfigDict(extra="forbid")

    image_cid: SafeStr = Field(min_length=1, max_length=128, description="The image's CID.")
    command: list[SafeStr] | None = Field(
        default=None, min_length=1, max_length=64,
        description="Argument vector (default: the image's own entrypoint and command).")

    @field_validator("image_cid")
    @classmethod
    def _canonical(cls, v: str) -> str:
        from hcp.errors import InvalidCidError
        from hcp.images.cids import normalize

        try:
            return normalize(v)  # one spelling per CID
        except InvalidCidError as exc:
            raise ValueError(exc.detail) from None

    @field_validator("command")
    @classmethod
    def _bounded(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(len(a) > 4096 for a in v):
            raise ValueError("each argument is at most 4096 characters")
        return v


class WorkloadSpec(BaseModel):
    """The body of ``POST /api/v1/workloads``."""

    model_config = ConfigDict(extra="forbid")

    type: WorkloadType
    priority: StrictPositive = Field(le=10, description="1..10, 10 most urgent; >= 8 is real-time.")
    requirements: Requirements = Field(default_factory=Requirements)
    sla: Sla = Field(default_factory=Sla)
    interruptible: StrictBool = Field(default=True,
                                      description="May be preempted by a real-time workload.")
    duration_seconds: StrictPositive = Field(default=60, le=MAX_DURATION_SECONDS)
    name: SafeStr | None = Field(default=None, max_length=200)
    container: Container | None = Field(
        default=None, description="Batch and training only: the image and command the platform's "
        "agent runs on the chosen GPU; the workload ends when the container exits.")

    @model_validator(mode="after")
    def _container_only_for_batch_work(self) -> WorkloadSpec:
        if self.container is not None and self.type not in _CONTAINER_TYPES:
            raise ValueError("a container runs batch or training work only")
        return self

    @property
    def real_time(self) -> bool:
        return self.priority >= REAL_TIME_PRIORITY


@dataclass
class Workload:
    """One workload as the router holds it; the store row mirrors these fields."""

    id: str
    owner: str
    type: WorkloadType
    priority: int
    state: WorkloadState
    requirements: dict[str, Any]
    sla: dict[str, Any]
    interruptible: bool
    duration_seconds: int
    created_at: datetime
    seq: int  # admission order; FIFO inside a priority, also the pagination cursor
    name: str | None = None
    device_id: str | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    gpu_ms: int = 0  # metered GPU time of finished run segments, integer milliseconds
    cost_micro_usd: int = 0
    preempted_mining: bool = False
    detail: str = ""
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    container: dict[str, Any] | None = None  # {"image_cid", "command"}: run by the agent
    # The current run segment's container start (metering starts there); None before it.
    container_started_at: datetime | None = None

    @property
    def runs_container(self) -> bool:
        return self.container is not None

    @property
    def real_time(self) -> bool:
        return self.priority >= REAL_TIME_PRIORITY

    def view(self) -> dict[str, Any]:
        """The JSON-able view every API returns."""
        return {
            "id": self.id, "owner": self.owner, "name": self.name, "type": self.type.value,
            "priority": self.priority, "state": self.state.value,
            "requirements": dict(self.requirements), "sla": dict(self.sla),
            "interruptible": self.interruptible, "duration_seconds": self.duration_seconds,
            "device_id": self.device_id, "created_at": _iso(self.created_at),
            "scheduled_at": _iso(self.scheduled_at), "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at), "gpu_seconds": self.gpu_ms / 1000.0,
            "cost_micro_usd": self.cost_micro_usd, "preempted_mining": self.preempted_mining,
            "detail": self.detail, "idempotency_key": self.idempotency_key,
            "container": dict(self.container) if self.container is not None else None,
            "container_started_at": _iso(self.container_started_at),
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


class Submission(NamedTuple):
    """One submission as it crosses into the router actor: the owner, the parsed spec (the API
    validated it at the edge) and the idempotency key, if any."""

    owner: str
    spec: WorkloadSpec
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Admission:
    """One submission's answer: the workload, and whether its idempotency key had already
    admitted it (a retry)."""

    workload: Workload
    replayed: bool = False


@dataclass(frozen=True)
class WorkloadPage:
    items: list[Workload]
    next_cursor: str | None = None


@dataclass(frozen=True)
class TypeUsage:
    workloads: int = 0
    gpu_ms: int = 0
    cost_micro_usd: int = 0

    @property
    def gpu_seconds(self) -> float:
        return self.gpu_ms / 1000.0


@dataclass(frozen=True)
class UsageTotals:
    """Metered totals of finished run segments, overall and per workload type."""

    owner: str | None
    by_type: dict[WorkloadType, TypeUsage]

    @property
    def gpu_ms(self) -> int:
        return sum(u.gpu_ms for u in self.by_type.values())

    @property
    def cost_micro_usd(self) -> int:
        return sum(u.cost_micro_usd for u in self.by_type.values())

    def to_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "gpu_ms": self.gpu_ms, "gpu_seconds": self.gpu_ms / 1000.0,
                "cost_micro_usd": self.cost_micro_usd,
                "by_type": {t.value: {"workloads": u.workloads, "gpu_seconds": u.gpu_seconds,
                                      "gpu_ms": u.gpu_ms, "cost_micro_usd": u.cost_micro_usd}
                            for t, u in self.by_type.items()}}


@dataclass(frozen=True)
class RouterStats:
    pid: int
    queued: int
    active: int
    assigned: dict[str, str]
    resumed: dict[str, int]
    queued_by_priority: dict[int, int]
