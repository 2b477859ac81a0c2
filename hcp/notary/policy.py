"""The notary's limits and thresholds, taken once from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hcp.config import Settings


@dataclass(frozen=True)
class NotaryPolicy:
    miner_limit: int = 10
    miner_window_seconds: int = 3600
    client_limit: int = 120
    client_window_seconds: int = 60
    nonce_ttl_seconds: int = 24 * 3600
    max_payload_bytes: int = 4096
    max_artifact_bytes: int = 16 << 20
    max_extracted_bytes: int = 64 << 20
    max_artifact_files: int = 16
    score_tolerance: float = 0.001
    sandbox_fuel: int = 200_000_000_000
    sandbox_memory_bytes: int = 1 << 30
    sandbox_max_timeout_seconds: float = 600.0
    sandbox_max_stdout_bytes: int = 64 << 10
    slash_base_bps: int = 500

    @classmethod
    def from_settings(cls, s: Settings) -> NotaryPolicy:
        return cls(
            miner_limit=s.notary.miner_limit, miner_window_seconds=s.notary.miner_window_seconds,
            client_limit=s.notary.client_limit,
            client_window_seconds=s.notary.client_window_seconds,
            nonce_ttl_seconds=s.notary.nonce_ttl_seconds,
            max_payload_bytes=s.notary.max_payload_bytes,
            max_artifact_bytes=s.notary.max_artifact_bytes,
            max_extracted_bytes=s.notary.max_extracted_bytes,
            max_artifact_files=s.notary.max_artifact_files,
            score_tolerance=s.notary.score_tolerance, sandbox_fuel=s.notary.sandbox_fuel,
            sandbox_memory_bytes=s.notary.sandbox_memory_bytes,
            sandbox_max_timeout_seconds=s.notary.sandbox_max_timeout_seconds,
            sandbox_max_stdout_bytes=s.notary.sandbox_max_stdout_bytes,
            slash_base_bps=s.notary.slash_base_bps)
