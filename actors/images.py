"""The platform node's image cache as an actor: a thin shell over ``hcp.images.cache.ImageCache``
whose thread runs a period whenever one is due (every ``HCP_IMAGES__CACHE_INTERVAL_SECONDS``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
import ray

from actors.metrics_sink import configure_breakers
from actors.options import image_cache_options
from hcp.clock import SystemClock
from hcp.config import Settings
from hcp.images.cache import CachePeriod, CacheStatus, ImageCache
from hcp.images.catalog import ImageCatalog
from hcp.images.peers import reachable_peers
from hcp.images.store.embedded import EmbeddedStore
from hcp.images.usage import MarketplaceJobUsage
from hcp.logging_setup import configure_for
from hcp.observability.stores import record_image_store
from hcp.store.db import engine_for

log = logging.getLogger(__name__)


@ray.remote
class ImageCacheActor:
    def __init__(self, settings: Settings, autostart: bool = True) -> None:
        configure_for(settings)
        configure_breakers(settings)
        engine = engine_for(settings.resolved_database_url)  # migrated by the platform's launch
        clock = SystemClock()
        self._store = EmbeddedStore.from_settings(settings, engine)
        self._cache = ImageCache(self._store, ImageCatalog(engine, clock),
                                 MarketplaceJobUsage(engine), clock, settings.images)
        from actors.metrics_sink import RaySink

        self._sink = RaySink()
        self._store.sink = self._sink  # its evictions and collections
        self._peers = settings.images.peers
        self._probe = httpx.Client(timeout=min(5.0, settings.images.fetch_timeout_seconds))
        self._tick = min(30.0, settings.images.cache_interval_seconds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._periods = 0
        self._errors = 0
        self._thread = threading.Thread(target=self._loop, name="image-cache", daemon=True)
        if autostart:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.step()
            except Exception:  # a failed period (store down) must not end the schedule
                self._errors += 1
                log.exception("image cache period failed")
            try:
                record_image_store(self._sink, self._store.stat(), "embedded",
                                   reachable_peers(self._peers, self._probe))
            except Exception:
                log.warning("image store metrics failed", exc_info=True)

    def step(self, force: bool = False) -> CachePeriod | None:
        with self._lock:
            period = self._cache.step(force)
        if period is not None:
            self._periods += 1
            for decision, outcome in period.outcomes:
                log.info("image cache: %s %s (%s): %s", decision.action.value, decision.cid,
                         decision.reason, outcome)
        return period

    def status(self) -> CacheStatus:
        return CacheStatus(self._periods, self._errors)

    def shutdown(self) -> None:
        self._stop.set()
        self._probe.close()


def launch_image_cache(settings: Settings) -> Any:
    handle = ImageCacheActor.options(**image_cache_options(settings)).remote(settings)
    ray.get(handle.status.remote(), timeout=settings.ray.start_timeout_seconds)  # surfaces constructor errors
    return handle
