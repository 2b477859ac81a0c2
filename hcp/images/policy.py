"""The caching policy a provider node runs: keep the marketplace's popular images pinned and
let go of those nobody ran for a month.

Every ``interval`` (5 minutes) it pins the ``top_n`` (10) most-used images and unpins images
it pinned whose last use is older than ``unused_days`` (30). Popularity and last use come
from the job records through ``UsageSource``, so the marketplace's job table can feed it; the
policy only decides and returns typed decisions, which ``apply`` carries out on a store.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from hcp.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageUsage:
    cid: str
    uses: int  # jobs that ran this image
    last_used: datetime | None


class UsageSource(Protocol):
    def image_usage(self) -> Iterable[ImageUsage]: ...


class CacheAction(str, enum.Enum):
    PIN = "pin"
    UNPIN = "unpin"


@dataclass(frozen=True)
class CacheDecision:
    action: CacheAction
    cid: str
    reason: str


class PinTarget(Protocol):
    def pin(self, cid: str) -> None: ...
    def unpin(self, cid: str) -> bool: ...
    def pinned(self) -> set[str]: ...


class CachePolicy:
    def __init__(self, source: UsageSource, clock: Clock, interval_seconds: float = 300.0,
                 top_n: int = 10, unused_days: int = 30) -> None:
        self.source = source
        self.clock = clock
        self.interval = timedelta(seconds=interval_seconds)
        self.top_n = top_n
        self.unused = timedelta(days=unused_days)
        self._next: datetime | None = None
        self.cached: set[str] = set()  # the images this policy pinned (others are not its own)

    def due(self) -> bool:
        return self._next is None or self.clock.now() >= self._next

    def decide(self, pinned: set[str]) -> list[CacheDecision]:
        now = self.clock.now()
        self._next = now + self.interval
        usage = list(self.source.image_usage())
        ranked = sorted((u for u in usage if u.uses > 0),
                        key=lambda u: (-u.uses, -(u.last_used.timestamp() if u.last_used else 0), u.cid))
        top = {u.cid for u in ranked[: self.top_n]}
        last = {u.cid: u.last_used for u in usage}
        out: list[CacheDecision] = []
        for u in ranked[: self.top_n]:
            if u.cid not in pinned:
                out.append(CacheDecision(CacheAction.PIN, u.cid, f"top {self.top_n}: {u.uses} jobs"))
        for cid in sorted(self.cached | (pinned & set(last))):
            seen = last.get(cid)
            if cid in top or cid not in pinned:
                continue
            stale = seen is None or now - seen >= self.unused
            if stale and (cid in self.cached or seen is not None):
                out.append(CacheDecision(CacheAction.UNPIN, cid, f"unused for {self.unused.days} days"))
        return out

    def apply(self, decisions: list[CacheDecision], target: PinTarget) -> list[tuple[CacheDecision, str]]:
        """Carry out the decisions; each outcome is "done" or the error code that stopped it."""
        outcomes = []
        for d in decisions:
            try:
                if d.action is CacheAction.PIN:
                    target.pin(d.cid)
                    self.cached.add(d.cid)
                else:
                    target.unpin(d.cid)
                    self.cached.discard(d.cid)
                outcomes.append((d, "done"))
            except Exception as exc:  # noqa: BLE001  (one image's failure must not stop the others)
                code = getattr(exc, "code", type(exc).__name__)
                log.warning("cache %s %s failed: %s", d.action.value, d.cid, exc)
                outcomes.append((d, str(code)))
        return outcomes

    def step(self, target: PinTarget) -> list[tuple[CacheDecision, str]]:
        """One period if it is due; nothing otherwise."""
        if not self.due():
            return []
        return self.apply(self.decide(target.pinned()), target)
