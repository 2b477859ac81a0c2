"""Response bodies of the platform API (they make the OpenAPI document complete)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hcp.fields import SafeStr
from hcp.fleet.modes import GpuMode


class ErrorBody(BaseModel):
    """Every refusal: a machine-readable code, a human detail, and optional context fields."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="Machine-readable code, e.g. 'workload_not_found'.")
    detail: Any = Field(description="What went wrong (a string, or a list of field problems).")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the refusals a route can make (401 and 429 always)."""
    text = {
        400: "Bad request",
        401: "No or invalid bearer token",
        403: "Role may not do this",
        404: "Not found (or not yours)",
        409: "Conflict with the current state",
        422: "Invalid input",
        429: "Rate limited (see Retry-After)",
        503: "A backing service (router, fleet, optimizer, store) is unavailable",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for s in sorted({401, 429, *statuses}):
        out[s] = {"model": ErrorBody, "description": text[s]}
    return out


class WorkloadView(BaseModel):
    id: str
    owner: str
    name: str | None = None
    type: str
    priority: int
    state: str
    requirements: dict[str, Any]
    sla: dict[str, Any]
    interruptible: bool
    duration_seconds: int
    device_id: str | None = None
    created_at: str | None = None
    scheduled_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    gpu_seconds: float = 0.0
    cost_micro_usd: int = Field(0, description="Metered cost so far, integer micro-USD.")
    preempted_mining: bool = False
    detail: str = ""
    idempotency_key: str | None = Field(
        None, description="The `Idempotency-Key` it was submitted with, if any."
    )
    container: dict[str, Any] | None = Field(
        None, description="Batch and training work: the image CID and command the platform's "
        "agent runs on its GPU (its output: `GET /api/v1/workloads/{id}/logs`)."
    )
    container_started_at: str | None = Field(
        None, description="When the agent's container of the current run started: a container "
        "workload is metered from here, not from its placement (the image pull is not billed)."
    )


class WorkloadLogLine(BaseModel):
    seq: int
    ts_ns: int = Field(description="When the container wrote it, ns since the epoch (UTC).")
    stream: str = Field(description="stdout or stderr.")
    text: str


class WorkloadLogs(BaseModel):
    items: list[WorkloadLogLine]
    next_after: int = Field(description="Pass as `after` for the lines that follow.")


class WorkloadPage(BaseModel):
    items: list[WorkloadView]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null at the end."
    )


class SwitchEvent(BaseModel):
    id: int
    at: str
    kind: str
    device_id: str | None = None
    facility: str | None = None
    from_mode: str | None = None
    to_mode: str | None = None
    generation: int | None = None
    total_ms: float | None = Field(None, description="Switch latency, milliseconds.")
    phases_ms: dict[str, float | None] = Field(default_factory=dict)
    reason: str | None = None
    payload: dict[str, Any] | None = None
    correlation_id: str | None = Field(
        None, description="The request or decision the switch answered (X-Request-ID, decision id).")


class SwitchPage(BaseModel):
    items: list[SwitchEvent]
    next_cursor: str | None = None


class GpuResource(BaseModel):
    model_config = ConfigDict(extra="allow")
    device_id: str
    facility: str | None = None
    mode: str
    hashrate_hs: float = 0.0
    utilization: float = 0.0
    telemetry: dict[str, Any] | None = Field(
        default_factory=dict, description="Power, temperature, memory (null: never reported)."
    )
    availability: str = Field(
        "up", description="'up', or 'unavailable' while its actor restarts (then the other "
        "fields are the last known values)."
    )
    detail: str = Field("", description="Why it is unavailable, when it is.")
    generation: int = Field(0, description="Committed mode changes so far.")
    held_by: str | None = Field(
        None, description="'job:<id>' while rented to a customer's container (RENTED), "
        "'workload:<id>' while a platform workload runs on it; only its holder changes its mode.")
    hashes_done: int = 0
    shares_found: int = 0
    inference_requests: int = 0
    mining_backend: str = ""
    inference_model: str = ""


class AsicResource(BaseModel):
    id: str
    facility: str
    mode: str


class Resources(BaseModel):
    facilities: list[dict[str, Any]] = Field(
        description="Facility power against its cap, mode counts."
    )
    gpus: list[GpuResource]
    asics: list[AsicResource]
    modes: list[str] = Field(default_factory=lambda: [m.value for m in GpuMode])
    as_of: datetime | None = Field(
        None, description="When these reports were gathered from the facility actors (UTC)."
    )


class ModeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: SafeStr = Field(
        description="MINING, INFERENCE, IDLE or CURTAILED.", min_length=1, max_length=16
    )
    reason: SafeStr = Field("api", max_length=200)


class SwitchResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    device_id: str
    from_mode: str
    to_mode: str
    total_ms: float
    noop: bool = False
    generation: int | None = Field(None, description="The committed generation of the device.")
    kind: str = Field("gpu", description="'gpu' or 'asic' (an ASIC switch is a power command: "
                      "no phase timings; its facility draw before and after instead).")
    facility: str = ""
    persist_ms: float = Field(0.0, description="Time to commit the change to the store.")
    power_before_w: float | None = Field(None, description="ASICs: facility draw before (W).")
    power_after_w: float | None = Field(None, description="ASICs: facility draw after (W).")
    correlation_id: str | None = Field(
        None, description="The request or decision this switch answered (the API request's "
        "X-Request-ID for a switch made through the API).")


class Billing(BaseModel):
    owner: str | None
    workloads: dict[str, Any] = Field(
        description="Router metering: GPU-seconds and micro-USD cost."
    )
    inference: dict[str, Any] = Field(description="Embeddings requests and input tokens.")


class Revenue(BaseModel):
    workloads: dict[str, Any] = Field(description="Metered workload revenue over all customers.")
    inference: dict[str, Any]


class HistoryPointView(BaseModel):
    at: datetime = Field(description="The step's start (UTC).")
    devices: int = Field(description="GPUs sampled in the step; 0: a gap, every value null.")
    power_w: float | None = None
    power_w_max: float | None = None
    temperature_c: float | None = None
    temperature_c_max: float | None = None
    utilization: float | None = None
    hashrate_hs: float | None = None


class MetricsHistory(BaseModel):
    scope: str = Field(description="device or facility")
    subject: str = Field(description="The GPU's id or the facility's name.")
    window: str = Field(description="1h, 1d or 30d")
    step_seconds: int
    start: datetime
    end: datetime
    source: str = Field(description="prometheus or store: which history answered.")
    points: list[HistoryPointView]
