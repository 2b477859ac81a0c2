"""Typed results of the platform API (workloads, fleet, billing, inference, live events).

Requests reuse the API's own input types (``WorkloadSpec``, ``GpuMode``...). Results are
frozen pydantic models that keep fields a newer server adds (``extra="allow"``), so an old
client still reads a new server; ``tests/unit/client`` checks every field the app documents
is declared here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hcp.workloads.types import WorkloadState, WorkloadType

T = TypeVar("T")


class Result(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Page(Result, Generic[T]):
    """One page of a list; ``next_cursor`` is None on the last one."""

    items: list[T]
    next_cursor: str | None = None


class Workload(Result):
    id: str
    owner: str
    name: str | None = None
    type: WorkloadType
    priority: int
    state: WorkloadState
    requirements: dict[str, Any] = Field(default_factory=dict)
    sla: dict[str, Any] = Field(default_factory=dict)
    interruptible: bool
    duration_seconds: int
    device_id: str | None = None
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    gpu_seconds: float = 0.0
    cost_micro_usd: int = 0
    preempted_mining: bool = False
    detail: str = ""
    idempotency_key: str | None = None
    container: dict[str, Any] | None = Field(None, description="Image CID and command, if any.")
    container_started_at: datetime | None = Field(
        None, description="When its container started (metered from there).")
    replayed: bool = Field(False, description="True when a retry returned the first submission.")

    @property
    def terminal(self) -> bool:
        return self.state.terminal


class GpuResource(Result):
    device_id: str
    facility: str | None = None
    mode: str
    hashrate_hs: float = 0.0
    utilization: float = 0.0
    telemetry: dict[str, Any] | None = Field(default_factory=dict)
    availability: str = Field("up", description="'unavailable' while its actor restarts.")
    detail: str = ""
    generation: int = 0
    held_by: str | None = Field(None, description="'job:<id>' (RENTED) or 'workload:<id>': "
                                "only its holder changes the GPU's mode.")
    hashes_done: int = 0
    shares_found: int = 0
    inference_requests: int = 0
    mining_backend: str = ""
    inference_model: str = ""


class WorkloadLogLine(Result):
    seq: int
    ts_ns: int
    stream: str
    text: str


class WorkloadLogs(Result):
    items: list[WorkloadLogLine]
    next_after: int


class AsicResource(Result):
    id: str
    facility: str
    mode: str


class Facility(Result):
    """A facility's power against its connection cap, and its devices' modes."""

    facility: str
    capacity_w: float
    pue: float
    it_power_w: float | None = None
    facility_power_w: float | None = Field(None, description="IT power x PUE: what the grid sees.")
    headroom_w: float | None = None
    over_cap: bool | None = None
    gpu_modes: dict[str, int] = Field(default_factory=dict)
    asic_modes: dict[str, int] = Field(default_factory=dict)
    gpu_hashrate_hs: float | None = None
    asic_hashrate_ths: float | None = None
    telemetry_sources: list[str] = Field(default_factory=list)
    unavailable: list[str] = Field(default_factory=list, description="GPUs not answering now.")


class Resources(Result):
    facilities: list[Facility]
    gpus: list[GpuResource]
    asics: list[AsicResource]
    modes: list[str] = Field(default_factory=list)
    as_of: datetime | None = None


class SwitchResult(Result):
    device_id: str
    from_mode: str
    to_mode: str
    total_ms: float
    noop: bool = False
    phases: dict[str, float | None] = Field(default_factory=dict, description="Milliseconds per phase.")
    at: datetime | None = None
    reason: str | None = None
    healthy: bool | None = None
    generation: int | None = None
    kind: str = "gpu"
    facility: str = ""
    persist_ms: float = 0.0
    power_before_w: float | None = None
    power_after_w: float | None = None
    correlation_id: str | None = None


class Event(Result):
    """One entry of the event log: a mode switch (``mode_change``) or a workload change."""

    id: int
    at: datetime
    kind: str
    device_id: str | None = None
    facility: str | None = None
    from_mode: str | None = None
    to_mode: str | None = None
    generation: int | None = None
    total_ms: float | None = None
    phases_ms: dict[str, float | None] = Field(default_factory=dict)
    reason: str | None = None
    payload: dict[str, Any] | None = None
    correlation_id: str | None = None


class Profitability(Result):
    """The optimizer's latest tick and each device's expected USD/hour per mode."""

    tick: dict[str, Any] | None = None
    devices: dict[str, dict[str, float]] = Field(default_factory=dict)


class TypeUsage(Result):
    workloads: int = 0
    gpu_ms: int = 0
    gpu_seconds: float = 0.0
    cost_micro_usd: int = 0


class WorkloadUsage(Result):
    """Router metering: GPU time and integer micro-USD, in all and per workload type."""

    owner: str | None = None
    gpu_ms: int = 0
    gpu_seconds: float = 0.0
    cost_micro_usd: int = 0
    by_type: dict[str, TypeUsage] = Field(default_factory=dict)


class ModelUsage(Result):
    requests: int = 0
    input_tokens: int = 0


class InferenceUsage(Result):
    requests: int = 0
    input_tokens: int = 0
    by_model: dict[str, ModelUsage] = Field(default_factory=dict)


class Billing(Result):
    owner: str | None
    workloads: WorkloadUsage
    inference: InferenceUsage


class Revenue(Result):
    workloads: WorkloadUsage
    inference: InferenceUsage


class HistoryPoint(Result):
    """One step; ``devices == 0`` is a gap (every value None), never a zero reading."""

    at: datetime
    devices: int
    power_w: float | None = None
    power_w_max: float | None = None
    temperature_c: float | None = None
    temperature_c_max: float | None = None
    utilization: float | None = None
    hashrate_hs: float | None = None


class MetricsHistory(Result):
    scope: str
    subject: str
    window: str
    step_seconds: int
    start: datetime
    end: datetime
    source: str  # "prometheus" or "store"
    points: list[HistoryPoint]


class Embeddings(Result):
    vectors: list[list[float]]
    model: str
    prompt_tokens: int
    total_tokens: int


class ModelCard(Result):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "hcp"
