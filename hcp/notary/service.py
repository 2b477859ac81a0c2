"""Wiring of the notary from Settings: stores, limiter, nonce store, pool, pipeline.

The backends follow ``HCP_NOTARY_REDIS_URL``: unset keeps nonces and rate counters in the SQL
store (embedded default); set, both live in Redis (production) and the notary fails closed
(503) whenever Redis cannot answer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from hcp.clock import Clock, SystemClock
from hcp.config import Settings
from hcp.notary.ledger import NotaryLedger, TaskRecord
from hcp.notary.metrics import NotaryMetrics
from hcp.notary.nonces import NonceStore, RedisNonceStore, SqlNonceStore
from hcp.notary.pipeline import NotaryPipeline
from hcp.notary.policy import NotaryPolicy
from hcp.notary.pool import LocalSandboxPool, SandboxPool
from hcp.notary.storage import ArtifactStore, DatasetStore
from hcp.ratelimit import RateLimiter, RedisRateLimiter, SqlRateLimiter

log = logging.getLogger(__name__)


class ActiveTaskCache:
    """``GET /api/v1/task`` is hot and the task rarely changes: cache it for a few seconds."""

    def __init__(self, ledger: NotaryLedger, ttl_seconds: float, clock: Clock) -> None:
        self._ledger = ledger
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._value: TaskRecord | None = None
        self._at = float("-inf")

    def get(self, now: datetime) -> TaskRecord | None:
        with self._lock:
            fresh = self._clock.monotonic() - self._at < self._ttl
            if fresh and (self._value is None or self._value.expires_at > now):
                return self._value
        value = self._ledger.active_task(now)
        with self._lock:
            self._value, self._at = value, self._clock.monotonic()
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._at = float("-inf")


@dataclass
class NotaryService:
    settings: Settings
    ledger: NotaryLedger
    datasets: DatasetStore
    artifacts: ArtifactStore
    pipeline: NotaryPipeline
    tasks: ActiveTaskCache
    clock: Clock


def make_redis(url: str) -> Any:
    import redis

    # Short timeouts: a dead Redis must turn into a quick 503, not a hung request.
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


def build_service(settings: Settings, engine: Engine, pool: SandboxPool | None = None,
                  clock: Clock | None = None, metrics: NotaryMetrics | None = None,
                  redis_client: Any | None = None) -> NotaryService:
    clock = clock or SystemClock()
    ledger = NotaryLedger(engine)
    root = settings.home / "notary"
    datasets = DatasetStore(root / "datasets")
    artifacts = ArtifactStore(root / "artifacts")
    limiter: RateLimiter
    nonces: NonceStore
    if redis_client is None and settings.notary.redis_url:
        redis_client = make_redis(settings.notary.redis_url)
    if redis_client is not None:
        limiter, nonces = RedisRateLimiter(redis_client), RedisNonceStore(redis_client)
    else:
        limiter, nonces = SqlRateLimiter(engine), SqlNonceStore(engine)
    pool = pool or LocalSandboxPool.from_settings(settings)
    pipeline = NotaryPipeline(ledger, limiter, nonces, pool, datasets, artifacts,
                              NotaryPolicy.from_settings(settings), clock, metrics)
    tasks = ActiveTaskCache(ledger, settings.notary.task_cache_seconds, clock)
    return NotaryService(settings, ledger, datasets, artifacts, pipeline, tasks, clock)


