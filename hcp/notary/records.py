"""Immutable views of the notary ledger's rows (what the ledger returns and accepts)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class MinerRecord:
    miner_id: str
    public_key: str
    stake: int
    balance: int
    slashed_total: int
    warnings: int
    slashes: int
    status: str
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["created_at"] = self.created_at.isoformat()
        d["revoked_at"] = self.revoked_at.isoformat() if self.revoked_at else None
        return d


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    metric: str
    performance_threshold: float
    dataset_hash: str
    max_training_time_seconds: float
    reward: int
    created_at: datetime
    expires_at: datetime
    status: str

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["created_at"] = self.created_at.isoformat()
        d["expires_at"] = self.expires_at.isoformat()
        return d


@dataclass(frozen=True)
class ClaimDraft:
    submission_id: str
    miner_id: str
    task_id: str
    claimed_score: float
    verified_score: float | None
    outcome: str
    details: str | None
    artifact_hash: str
    artifact_uri: str
    signature: str
    payload_timestamp: str
    nonce: str
    received_at: datetime
    verification_seconds: float


@dataclass(frozen=True)
class ClaimRecord(ClaimDraft):
    """A claim as the ledger holds it: the draft plus what the ledger decided."""

    status: str
    duplicate_of: str | None
    reward: int
    slashed: int
    warning: bool

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["received_at"] = self.received_at.isoformat()
        return d

    def public_dict(self) -> dict[str, Any]:
        """What anyone may read: the verdict, not the signed material or the server's paths."""
        d = self.to_dict()
        for private in _PRIVATE_CLAIM_FIELDS:
            d.pop(private, None)
        return d


_PRIVATE_CLAIM_FIELDS = ("signature", "nonce", "payload_timestamp", "artifact_uri")


def miner_record(row: Any) -> MinerRecord:
    return MinerRecord(row.id, row.public_key, row.stake, row.balance, row.slashed_total,
                       row.warnings, row.slashes, row.status, row.created_at, row.revoked_at)


def task_record(row: Any) -> TaskRecord:
    return TaskRecord(row.id, row.metric, row.performance_threshold, row.dataset_hash,
                      row.max_training_time_seconds, row.reward, row.created_at, row.expires_at,
                      row.status)


def claim_record(row: Any) -> ClaimRecord:
    return ClaimRecord(**{f.name: getattr(row, f.name) for f in fields(ClaimRecord)
                          if f.name != "warning"}, warning=bool(row.warning))
