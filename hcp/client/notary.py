"""The notary's endpoints (ML-Chain v6 task/submit/claims, and its admin API) for the SDK.

``client.notary`` (sync) and ``AsyncHcpClient.notary`` (async) send these calls. A signed
claim is resent after a lost answer: the notary refuses a second use of its nonce
(``replay_detected``), so a retry can never record a claim twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from hcp.client.calls import params, seg, validated
from hcp.client.models import Result
from hcp.client.transport import Call, Safety, model, models
from hcp.errors import ValidationError
from hcp.notary.storage import sha256_ref

API = "/api/v1"
ADMIN = "/api/v1/admin"


class NotaryTask(Result):
    """The active task, as miners see it."""

    task_id: str
    metric: str
    performance_threshold: float
    dataset_hash: str
    max_training_time_seconds: float
    expires_at: datetime
    reward: int


class TaskRecord(NotaryTask):
    created_at: datetime
    status: str


class NewTask(Result):
    """The body of ``POST /api/v1/admin/tasks``."""

    task_id: str
    metric: str
    performance_threshold: float
    dataset_hash: str
    max_training_time_seconds: float
    expires_at: datetime
    reward: int


class ClaimVerdict(Result):
    status: str
    submission_id: str
    verified_score: float | None = None
    claimed_score: float
    task_id: str
    miner_id: str
    artifact_hash: str
    duplicate_of: str | None = None
    reward: int = 0
    verification_seconds: float = 0.0


class Claim(Result):
    submission_id: str
    miner_id: str
    task_id: str
    claimed_score: float
    verified_score: float | None = None
    outcome: str
    details: str | None = None
    artifact_hash: str
    # The signed material and the server's artifact location: shown to admins and to the
    # claim's own miner only; None for anyone else.
    artifact_uri: str | None = None
    signature: str | None = None
    payload_timestamp: str | None = None
    nonce: str | None = None
    received_at: datetime
    verification_seconds: float
    status: str
    duplicate_of: str | None = None
    reward: int = 0
    slashed: int = 0
    warning: bool = False


class Miner(Result):
    miner_id: str
    public_key: str
    stake: int
    balance: int
    slashed_total: int
    warnings: int
    slashes: int
    status: str
    created_at: datetime
    revoked_at: datetime | None = None


class DatasetRef(Result):
    dataset_hash: str
    size_bytes: int


def task() -> Call[NotaryTask]:
    return Call("GET", f"{API}/task", model(NotaryTask))


def dataset(dataset_hash: str) -> Call[bytes]:
    def parse(resp: httpx.Response) -> bytes:
        # The hash names the bytes: a server cannot hand out other data under it.
        if sha256_ref(resp.content) != dataset_hash:
            raise ValueError(f"dataset bytes do not match {dataset_hash}")
        return resp.content

    return Call("GET", f"{API}/datasets/{seg(dataset_hash)}", parse)


def submit_claim(payload_json: str, signature: str, artifact: bytes) -> Call[ClaimVerdict]:
    if not isinstance(artifact, bytes | bytearray):
        raise ValidationError("artifact must be bytes (the .tar.gz)")
    return Call("POST", f"{API}/submit", model(ClaimVerdict), safety=Safety.KEYED, ok=(202,),
                data={"payload": payload_json, "signature": signature},
                files={"artifact": ("artifact.tar.gz", bytes(artifact), "application/gzip")})


def claim(submission_id: str) -> Call[Claim]:
    return Call("GET", f"{API}/claims/{seg(submission_id)}", model(Claim))


def register_miner(miner_id: str, public_key_hex: str, stake: int) -> Call[Miner]:
    return Call("POST", f"{ADMIN}/miners", model(Miner), safety=Safety.UNSAFE, ok=(201,),
                json={"miner_id": miner_id, "public_key": public_key_hex, "stake": stake})


def list_miners() -> Call[list[Miner]]:
    return Call("GET", f"{ADMIN}/miners", models(Miner))


def miner(miner_id: str) -> Call[Miner]:
    return Call("GET", f"{ADMIN}/miners/{seg(miner_id)}", model(Miner))


def revoke_miner(miner_id: str) -> Call[Miner]:
    return Call("POST", f"{ADMIN}/miners/{seg(miner_id)}/revoke", model(Miner), safety=Safety.UNSAFE)


def upload_dataset(data: bytes) -> Call[DatasetRef]:
    # Content-addressed: the same bytes give the same hash however often they are sent.
    return Call("POST", f"{ADMIN}/datasets", model(DatasetRef), ok=(201,),
                files={"file": ("dataset.csv", bytes(data), "text/csv")})


def create_task(spec: NewTask | Mapping[str, Any]) -> Call[TaskRecord]:
    body: NewTask = validated(NewTask, spec)
    if body.expires_at.tzinfo is None:
        raise ValidationError("expires_at must carry a time zone", field="expires_at")
    return Call("POST", f"{ADMIN}/tasks", model(TaskRecord), safety=Safety.UNSAFE, ok=(201,),
                json=body.model_dump(mode="json"))


def list_tasks() -> Call[list[TaskRecord]]:
    return Call("GET", f"{ADMIN}/tasks", models(TaskRecord))


def close_task(task_id: str) -> Call[TaskRecord]:
    return Call("POST", f"{ADMIN}/tasks/{seg(task_id)}/close", model(TaskRecord), safety=Safety.UNSAFE)


def list_claims(miner_id: str | None, limit: int) -> Call[list[Claim]]:
    return Call("GET", f"{ADMIN}/claims", models(Claim), params=params(miner_id=miner_id, limit=limit))
