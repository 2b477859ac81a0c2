"""Circuit-breaker settings per dependency: ``HCP_OPS__BREAKERS__REDIS__FAILURE_THRESHOLD=3``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BreakerPolicy(BaseModel):
    failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open the breaker.")
    recovery_seconds: float = Field(
        default=15.0, gt=0, description="How long an open breaker fails fast before a probe.")
    timeout_seconds: float = Field(
        default=5.0, gt=0, description="Limit of one call (async calls are cancelled at it; "
        "sync clients are given it as their own timeout).")


class BreakerSettings(BaseModel):
    postgres: BreakerPolicy = Field(default_factory=BreakerPolicy)
    redis: BreakerPolicy = Field(
        default_factory=lambda: BreakerPolicy(recovery_seconds=5.0, timeout_seconds=1.0))
    chain: BreakerPolicy = Field(
        default_factory=lambda: BreakerPolicy(recovery_seconds=15.0, timeout_seconds=30.0))
    image_store: BreakerPolicy = Field(
        default_factory=lambda: BreakerPolicy(recovery_seconds=10.0, timeout_seconds=60.0))
