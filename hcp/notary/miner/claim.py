"""Building what a miner submits: the artifact, the canonical payload, and its signature."""

from __future__ import annotations

import gzip
import io
import math
import tarfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hcp.clock import utcnow
from hcp.errors import ValidationError
from hcp.notary.canonical import jcs_bytes
from hcp.notary.miner.keys import MinerKey
from hcp.notary.reference_task import hyperparameters_json, sha256_hash

WASM_NAME = "train.wasm"
HYPERPARAMETERS_NAME = "hyperparameters.json"


def build_artifact(wasm: bytes, hyperparameters: dict[str, Any] | None) -> bytes:
    """The ``.tar.gz`` artifact: deterministic, so the same inputs always hash the same.

    Fixed member order, zero mtimes, no owner names, mode 0644, and a gzip header without a
    timestamp or file name: nothing about when or where it was built leaks into the hash.
    """
    members = [(WASM_NAME, wasm)]
    if hyperparameters is not None:
        members.append((HYPERPARAMETERS_NAME, hyperparameters_json(hyperparameters)))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def artifact_hash(artifact: bytes) -> str:
    return sha256_hash(artifact)


def timestamp_now(now: datetime | None = None) -> str:
    """ISO-8601 UTC with a ``Z`` and whole seconds, e.g. ``2026-11-23T12:00:00Z``."""
    return (now or utcnow()).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SignedClaim:
    payload: dict[str, Any]
    payload_json: str  # exactly the JCS bytes that were signed, as text
    signature: str  # hex
    artifact: bytes

    @property
    def nonce(self) -> str:
        return str(self.payload["nonce"])


def build_payload(miner_id: str, task_id: str, claimed_score: float, artifact: bytes,
                  timestamp: str | None = None, nonce: str | None = None) -> dict[str, Any]:
    if not math.isfinite(claimed_score):
        raise ValidationError("claimed_score must be finite", claimed_score=str(claimed_score))
    return {
        "miner_id": str(uuid.UUID(miner_id)),
        "task_id": task_id,
        "claimed_score": float(claimed_score),
        "artifact_hash": artifact_hash(artifact),
        "timestamp": timestamp or timestamp_now(),
        "nonce": nonce or str(uuid.uuid4()),
    }


def sign_claim(key: MinerKey, payload: dict[str, Any], artifact: bytes) -> SignedClaim:
    """Sign the RFC 8785 (JCS) bytes of ``payload``; the payload is sent as those same bytes,
    which a notary (or a miner in another language) reproduces exactly."""
    if payload.get("miner_id") != key.miner_id:
        raise ValidationError("payload miner_id is not this key's miner",
                              miner_id=payload.get("miner_id"))
    if payload.get("artifact_hash") != artifact_hash(artifact):
        raise ValidationError("payload artifact_hash does not match the artifact")
    message = jcs_bytes(payload)
    return SignedClaim(dict(payload), message.decode("utf-8"), key.sign(message), artifact)

