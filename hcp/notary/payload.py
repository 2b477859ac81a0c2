"""Parsing and validating the signed claim payload of ML-Chain v6."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hcp.errors import (
    InvalidPayloadFieldError,
    InvalidPayloadJsonError,
    MissingFieldError,
    PayloadTooLargeError,
)

FIELDS = ("miner_id", "task_id", "claimed_score", "artifact_hash", "timestamp", "nonce")
_ARTIFACT_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


@dataclass(frozen=True)
class ClaimPayload:
    miner_id: str
    task_id: str
    claimed_score: float
    artifact_hash: str
    timestamp: datetime
    timestamp_raw: str
    nonce: str
    raw: dict[str, Any]  # exactly what was parsed: the signature covers its canonical JSON


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            # Two values for one key would make "the" signed payload ambiguous.
            raise InvalidPayloadJsonError(f"duplicate key {k!r} in payload", field=k)
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise InvalidPayloadJsonError(f"payload contains {name}, which is not JSON")


def parse_payload(text: str | bytes | None, max_bytes: int) -> ClaimPayload:
    if text is None:
        raise MissingFieldError("form field 'payload' is required", field="payload")
    raw_bytes = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw_bytes) > max_bytes:
        raise PayloadTooLargeError(f"payload exceeds {max_bytes} bytes", limit=max_bytes)
    try:
        obj = json.loads(raw_bytes, object_pairs_hook=_no_duplicates,
                         parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayloadJsonError(f"payload is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidPayloadJsonError("payload must be a JSON object")
    for name in FIELDS:
        if name not in obj:
            raise MissingFieldError(f"payload field {name!r} is required", field=name)
    extra = sorted(set(obj) - set(FIELDS))
    if extra:
        raise InvalidPayloadFieldError(f"unknown payload fields {extra}", field=extra[0])

    miner_id = _uuid(obj["miner_id"], "miner_id", version=None)
    nonce = _uuid(obj["nonce"], "nonce", version=4)
    task_id = obj["task_id"]
    if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
        raise InvalidPayloadFieldError("task_id must be a short identifier string", field="task_id")
    score = obj["claimed_score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise InvalidPayloadFieldError("claimed_score must be a finite number", field="claimed_score")
    artifact_hash = obj["artifact_hash"]
    if not isinstance(artifact_hash, str) or not _ARTIFACT_HASH.match(artifact_hash):
        raise InvalidPayloadFieldError("artifact_hash must be 'sha256:<64 lowercase hex>'",
                                       field="artifact_hash")
    ts, ts_raw = _timestamp(obj["timestamp"])
    return ClaimPayload(miner_id, task_id, float(score), artifact_hash, ts, ts_raw, nonce, obj)


def _uuid(value: Any, field: str, version: int | None) -> str:
    if not isinstance(value, str):
        raise InvalidPayloadFieldError(f"{field} must be a UUID string", field=field)
    try:
        parsed = uuid.UUID(value)
    except ValueError as exc:
        raise InvalidPayloadFieldError(f"{field} must be a UUID", field=field) from exc
    if version is not None and parsed.version != version:
        raise InvalidPayloadFieldError(f"{field} must be a UUID version {version}", field=field)
    return str(parsed)


def _timestamp(value: Any) -> tuple[datetime, str]:
    if isinstance(value, bool):
        raise InvalidPayloadFieldError("timestamp must be ISO-8601 or Unix seconds", field="timestamp")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidPayloadFieldError("timestamp must be finite", field="timestamp")
        try:
            return datetime.fromtimestamp(value, tz=UTC), str(value)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidPayloadFieldError("timestamp out of range", field="timestamp") from exc
    if isinstance(value, str) and len(value) <= 64:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidPayloadFieldError("timestamp must be ISO-8601", field="timestamp") from exc
        if ts.tzinfo is None:
            raise InvalidPayloadFieldError("timestamp must carry a time zone", field="timestamp")
        return ts.astimezone(UTC), value
    raise InvalidPayloadFieldError("timestamp must be ISO-8601 or Unix seconds", field="timestamp")
