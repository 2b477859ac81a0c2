"""A node's image cache (the platform's image node, or a provider agent's own store), one
period at a time: the marketplace's job records say which images are popular; ``CachePolicy``
pins the top ones in the block store (a provider fetching their blocks from peers) and lets go
of the ones it pinned that nobody ran for a month; on the platform node the catalog's
``uses``/``last_used`` follow the same records, so ``GET /api/v1/images`` lists the popular
images first.

Pins the policy makes are recorded as ``pinned_by="cache-policy"``, so after a restart it
knows again which pins are its own. Another's pin is let go only under the issue's rule (jobs
ran the image, none for a month), never the pin of an image no job ever ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hcp.clock import Clock
from hcp.images.catalog import ImageCatalog
from hcp.images.cids import parse_cid
from hcp.images.policy import CacheDecision, CachePolicy, UsageSource
from hcp.images.settings import ImagesSettings
from hcp.images.store.embedded import EmbeddedStore

log = logging.getLogger(__name__)

CACHE_PINNER = "cache-policy"


class StorePins:
    """``PinTarget`` over the block store (CIDs as the policy's strings). On a provider node
    ``pull`` fetches a popular image's missing blocks from peers (each verified) as it pins."""

    def __init__(self, store: EmbeddedStore, pull: Callable[[str], Any] | None = None) -> None:
        self.store = store
        self._pull = pull

    def pin(self, cid: str) -> None:
        if self._pull is not None:
            self._pull(cid)
            return
        self.store.pin(parse_cid(cid), pinned_by=CACHE_PINNER)

    def unpin(self, cid: str) -> bool:
        return self.store.unpin(parse_cid(cid))

    def pinned(self) -> set[str]:
        return {str(p.cid) for p in self.store.pins()}

    def pinned_by_cache(self) -> set[str]:
        return {str(p.cid) for p in self.store.pins() if p.pinned_by == CACHE_PINNER}


@dataclass(frozen=True)
class CachePeriod:
    """What one period did: each decision with its outcome ("done" or an error code), and how
    many catalog entries got new usage counters."""

    outcomes: tuple[tuple[CacheDecision, str], ...]
    usage_updated: int


@dataclass(frozen=True)
class CacheStatus:
    periods: int  # periods run since the actor started
    errors: int  # periods that failed (the store down...)


class ImageCache:
    """One node's cache. ``catalog`` is the platform node's (its usage counters follow the job
    records); a provider node has none to keep and passes ``pull`` to fetch what it pins."""

    def __init__(self, store: EmbeddedStore, catalog: ImageCatalog | None, source: UsageSource,
                 clock: Clock, settings: ImagesSettings,
                 pull: Callable[[str], Any] | None = None) -> None:
        self.catalog = catalog
        self.source = source
        self.target = StorePins(store, pull)
        self.policy = CachePolicy(source, clock, settings.cache_interval_seconds,
                                  settings.cache_top_n, settings.cache_unused_days)
        self.policy.cached = self.target.pinned_by_cache()

    def due(self) -> bool:
        return self.policy.due()

    def step(self, force: bool = False) -> CachePeriod | None:
        """One period if it is due (or ``force``); None otherwise."""
        if not (force or self.policy.due()):
            return None
        outcomes = self.policy.apply(self.policy.decide(self.target.pinned()), self.target)
        return CachePeriod(tuple(outcomes), self._sync_usage())

    def _sync_usage(self) -> int:
        if self.catalog is None:
            return 0
        known = {i.cid: i for i in self.catalog.list(limit=10_000)}
        n = 0
        for u in self.source.image_usage():
            info = known.get(u.cid)
            if info is not None and (info.uses, info.last_used) != (u.uses, u.last_used):
                self.catalog.set_usage(u.cid, u.uses, u.last_used)
                n += 1
        return n
