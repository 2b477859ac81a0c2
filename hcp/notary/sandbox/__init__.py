"""Sandboxes that re-run a miner's ``train.wasm``: wasmtime in-process, or Docker isolation."""

from hcp.notary.sandbox.base import (
    SCORE_PATTERN,
    Sandbox,
    SandboxLimits,
    SandboxOutcome,
    SandboxResult,
    parse_score,
)

__all__ = ["SCORE_PATTERN", "Sandbox", "SandboxLimits", "SandboxOutcome", "SandboxResult",
           "parse_score"]
