"""The platform API's endpoints as ``Call`` values: workloads, fleet, billing, inference.

Each function validates its input the way the API will (same types), builds the request and
says how to read the answer; the sync and async clients only send them.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pydantic

from hcp.client.models import (
    Billing,
    Embeddings,
    Event,
    MetricsHistory,
    ModelCard,
    Page,
    Profitability,
    Resources,
    Revenue,
    SwitchResult,
    Workload,
    WorkloadLogs,
)
from hcp.client.transport import Call, Safety, model
from hcp.errors import ValidationError
from hcp.fleet.modes import GpuMode
from hcp.workloads.types import WorkloadSpec, WorkloadState, WorkloadType

WORKLOADS = "/api/v1/workloads"


def seg(value: str) -> str:
    """One path segment, escaped (an id never changes which route is called)."""
    if not isinstance(value, str) or not value:
        raise ValidationError("an id must be a non-empty string", value=str(value))
    return quote(value, safe="")


def params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ones left unset; enums by value."""
    return {k: getattr(v, "value", v) for k, v in values.items() if v is not None}


def validated(cls: type[pydantic.BaseModel], value: Any) -> Any:
    """``value`` as ``cls`` (the API's own input type), refused here with the API's code."""
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(value)
    except pydantic.ValidationError as exc:
        problems = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
        raise ValidationError(detail, problems=problems) from None


def new_key() -> str:
    return uuid.uuid4().hex


# --- workloads ---------------------------------------------------------------------------

def submit_workload(spec: WorkloadSpec | Mapping[str, Any], idempotency_key: str | None) -> Call[Workload]:
    body: WorkloadSpec = validated(WorkloadSpec, spec)

    def parse(resp: httpx.Response) -> Workload:
        w = Workload.model_validate(resp.json())
        return w.model_copy(update={"replayed": resp.headers.get("Idempotent-Replayed") == "true"})

    # One key per logical submission, reused by every retry: the API answers a retry with the
    # workload the first attempt created (200, Idempotent-Replayed) instead of a second one.
    return Call("POST", WORKLOADS, parse, json=body.model_dump(mode="json"),
                headers={"Idempotency-Key": idempotency_key or new_key()},
                safety=Safety.KEYED, ok=(200, 201))


def list_workloads(state: WorkloadState | str | None, type: WorkloadType | str | None,
                   owner: str | None, limit: int, cursor: str | None) -> Call[Page[Workload]]:
    return Call("GET", WORKLOADS, model(Page[Workload]),
                params=params(state=state, type=type, owner=owner, limit=limit, cursor=cursor))


def get_workload(workload_id: str) -> Call[Workload]:
    return Call("GET", f"{WORKLOADS}/{seg(workload_id)}", model(Workload))


def workload_logs(workload_id: str, after: int = -1, limit: int = 500) -> Call[WorkloadLogs]:
    return Call("GET", f"{WORKLOADS}/{seg(workload_id)}/logs", model(WorkloadLogs),
                params=params(after=after, limit=limit))


def cancel_workload(workload_id: str) -> Call[Workload]:
    return Call("DELETE", f"{WORKLOADS}/{seg(workload_id)}", model(Workload))


# --- fleet, history, economics, billing ---------------------------------------------------

def resources(facility: str | None, mode: GpuMode | str | None) -> Call[Resources]:
    return Call("GET", "/api/v1/resources", model(Resources),
                params=params(facility=facility, mode=GpuMode.parse(mode) if mode else None))


def set_mode(device_id: str, mode: GpuMode | str, reason: str) -> Call[SwitchResult]:
    target = GpuMode.parse(mode) if isinstance(mode, str) else mode
    # Setting the mode a device already has is a no-op: safe to resend.
    return Call("POST", f"/api/v1/resources/devices/{seg(device_id)}/mode", model(SwitchResult),
                json={"mode": target.value, "reason": reason})


def switches(device: str | None, limit: int, cursor: str | None) -> Call[Page[Event]]:
    return Call("GET", "/api/v1/switches", model(Page[Event]),
                params=params(device=device, limit=limit, cursor=cursor))


def profitability() -> Call[Profitability]:
    return Call("GET", "/api/v1/profitability", model(Profitability))


def revenue() -> Call[Revenue]:
    return Call("GET", "/api/v1/revenue", model(Revenue))


def billing(owner: str | None) -> Call[Billing]:
    return Call("GET", "/api/v1/billing", model(Billing), params=params(owner=owner))


def device_history(device_id: str, window: str) -> Call[MetricsHistory]:
    return Call("GET", f"/api/v1/metrics/devices/{seg(device_id)}", model(MetricsHistory),
                params=params(window=window))


def facility_history(facility: str, window: str) -> Call[MetricsHistory]:
    return Call("GET", f"/api/v1/metrics/facilities/{seg(facility)}", model(MetricsHistory),
                params=params(window=window))


# --- inference (OpenAI-compatible) -------------------------------------------------------

def _vector(item: Mapping[str, Any]) -> list[float]:
    v = item["embedding"]
    if isinstance(v, str):  # little-endian float32, exactly the model's values
        return np.frombuffer(base64.b64decode(v), dtype="<f4").astype(float).tolist()
    return [float(x) for x in v]


def embed(texts: str | Sequence[str], model_name: str, encoding_format: str) -> Call[Embeddings]:
    batch = [texts] if isinstance(texts, str) else list(texts)
    if encoding_format not in ("float", "base64"):
        raise ValidationError("encoding_format is 'float' or 'base64'", value=encoding_format)

    def parse(resp: httpx.Response) -> Embeddings:
        body = resp.json()
        data = sorted(body["data"], key=lambda d: d["index"])
        usage = body.get("usage", {})
        return Embeddings(vectors=[_vector(d) for d in data], model=body["model"],
                          prompt_tokens=usage.get("prompt_tokens", 0),
                          total_tokens=usage.get("total_tokens", 0))

    # Not resent after a lost answer: each request is metered.
    return Call("POST", "/v1/embeddings", parse, safety=Safety.UNSAFE,
                json={"input": batch, "model": model_name, "encoding_format": encoding_format})


def list_models() -> Call[list[ModelCard]]:
    return Call("GET", "/v1/models",
                lambda resp: [ModelCard.model_validate(m) for m in resp.json()["data"]])
