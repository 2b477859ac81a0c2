"""Request bodies of the instance and agent routes, and the JSON views they answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from hcp.agent.messages import (
    InstanceSpec,
    LogLine,
    MetricSample,
    NetworkMode,
    Phase,
    Reason,
    RunRecord,
)
from hcp.fields import AwareDatetime, SafeStr, StrictCount, StrictFloat, StrictPositive
from hcp.marketplace.jobs import JobStatus
from hcp.marketplace.offers import OfferView
from hcp.marketplace.views import JobView
from serve_apps.marketplace.schemas import settlement_json

_ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceIn(_Body):
    gpu_id: SafeStr = Field(min_length=1, max_length=36, description="The GPU listing (offer) id.")
    image_cid: SafeStr = Field(min_length=1, max_length=128, description="The image's CID.")
    max_duration_seconds: StrictPositive = Field(
        description="The escrow locks price x this; the container is stopped when it is reached.")
    network: NetworkMode = Field(default=NetworkMode.NONE,
                                 description="none, or egress (outbound only)")
    command: list[SafeStr] | None = Field(default=None, max_length=64,
                                          description="Overrides the image's command.")
    env: dict[SafeStr, SafeStr] | None = Field(default=None, max_length=64)

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or any(len(a) > 4096 for a in v)):
            raise ValueError("a command is 1..64 arguments of at most 4096 characters")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        import re

        for key, value in (v or {}).items():
            if not re.fullmatch(_ENV_KEY, key) or key.startswith("HCP_") or len(value) > 4096:
                raise ValueError(f"bad environment variable {key[:40]!r} (names like A_B, not "
                                 "HCP_*; values of at most 4096 characters)")
        return v

    def spec(self) -> InstanceSpec:
        return InstanceSpec(self.network, tuple(self.command) if self.command else None,
                            dict(self.env or {}))


class LogLineIn(_Body):
    seq: StrictCount
    stream: Literal["stdout", "stderr"]
    ts_ns: StrictCount
    text: SafeStr = Field(max_length=64 << 10)
    partial: StrictBool = False


class LogLinesIn(_Body):
    lines: list[LogLineIn] = Field(max_length=5000)


class SampleIn(_Body):
    seq: StrictCount
    at: AwareDatetime
    cpu_pct: StrictFloat = Field(ge=0)
    mem_bytes: StrictCount
    mem_limit_bytes: StrictCount
    pids: StrictCount
    gpu: dict[SafeStr, SafeStr | StrictFloat | StrictBool | None] = Field(max_length=16)


class SamplesIn(_Body):
    samples: list[SampleIn] = Field(max_length=500)


class RunIn(_Body):
    job_id: SafeStr = Field(max_length=36)
    agent_id: SafeStr = Field(min_length=1, max_length=64)
    provider: SafeStr = Field(max_length=128)
    gpu_id: SafeStr = Field(max_length=64)
    phase: Phase
    updated_at: AwareDatetime
    container_id: SafeStr | None = Field(default=None, max_length=80)
    image_id: SafeStr | None = Field(default=None, max_length=80)
    reason: Reason | None = None
    detail: SafeStr | None = Field(default=None, max_length=1000)
    exit_code: StrictInt | None = Field(default=None, ge=-(2**31), lt=2**31)
    oom_killed: StrictBool = False
    simulated_gpu: StrictBool = False
    network: NetworkMode = NetworkMode.NONE
    container_started_at: AwareDatetime | None = None
    container_finished_at: AwareDatetime | None = None
    usage_seconds: StrictCount | None = None

    def record(self) -> RunRecord:
        return RunRecord.from_dict(self.model_dump(mode="json"))


def lines_of(body: LogLinesIn) -> list[LogLine]:
    return [LogLine(x.seq, x.stream, x.ts_ns, x.text, x.partial) for x in body.lines]


def samples_of(body: SamplesIn) -> list[MetricSample]:
    return [MetricSample(x.seq, x.at, x.cpu_pct, x.mem_bytes, x.mem_limit_bytes, x.pids, x.gpu)
            for x in body.samples]


def gpu_json(o: OfferView) -> dict[str, Any]:
    return {"id": o.id, "provider": o.provider, "gpu_model": o.gpu_model, "vcpu": o.vcpu,
            "memory_gb": o.memory_gb, "storage_gb": o.storage_gb,
            "price_per_hour": str(o.price_per_hour), "location": o.location,
            "available": o.available, "reputation": o.reputation,
            "created_at": o.created_at.isoformat()}


_STATE = {JobStatus.CREATED: "pending", JobStatus.ACCEPTED: "starting",
          JobStatus.RUNNING: "running", JobStatus.COMPLETED: "completed",
          JobStatus.CANCELLED: "cancelled", JobStatus.DISPUTED: "disputed",
          JobStatus.RESOLVED: "disputed"}


def instance_state(job: JobView, run: RunRecord | None) -> str:
    if run is not None and run.phase is Phase.FAILED:
        return "failed"
    if job.status is JobStatus.COMPLETED and run is not None and run.reason is Reason.STOPPED_BY_RENTER:
        return "stopped"
    return _STATE[job.status]


def instance_json(job: JobView, spec: InstanceSpec | None, run: RunRecord | None) -> dict[str, Any]:
    def t(v: datetime | None) -> str | None:
        return None if v is None else v.isoformat()

    container = None
    if run is not None:
        container = {k: v for k, v in run.to_dict().items()
                     if k not in ("job_id", "provider", "network")}
    return {
        "id": job.id, "gpu_id": job.offer_id, "renter": job.renter, "provider": job.provider,
        "image_cid": job.image_cid, "status": job.status.value, "state": instance_state(job, run),
        "network": (spec.network if spec else NetworkMode.NONE).value,
        "command": list(spec.command) if spec and spec.command else None,
        "env_keys": sorted(spec.env) if spec else [],  # values may be secrets: never echoed
        "max_duration_seconds": job.estimated_seconds, "price_per_hour": str(job.price_per_hour),
        "max_cost": str(job.max_cost),
        "final_cost": None if job.final_cost is None else str(job.final_cost),
        "created_at": t(job.created_at), "started_at": t(job.started_at), "ended_at": t(job.ended_at),
        "container": container, "settlement": settlement_json(job.settlement),
    }
