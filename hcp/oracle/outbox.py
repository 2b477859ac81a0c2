"""A validator's votes on their way to the store and the coordinator, kept until stored.

A validator's node has already moved on when it hands out a vote (its missed-heartbeat count
advanced, its challenge verdict given): a vote lost to a store outage would never be cast again.
The outbox keeps every vote it could not store and sends it first on the next try, oldest first,
up to a bound (beyond it the oldest are dropped, logged: a store down that long is an outage the
operator is told about, and a quorum can still form from the other validators).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence

from hcp.errors import HcpError
from hcp.oracle.findings import Observation

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10_000


class VoteOutbox:
    def __init__(self, record: Callable[[list[Observation]], object],
                 deliver: Callable[[list[Observation]], object], limit: int = DEFAULT_LIMIT) -> None:
        self._record = record
        self._deliver = deliver
        self._held: deque[Observation] = deque()
        self._limit = limit
        self.dropped = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def send(self, votes: Sequence[Observation]) -> int:
        """Store then deliver what is held and ``votes``; returns the votes sent now. A store
        refusal keeps them all for the next call; it is not raised (the tick goes on)."""
        self._held.extend(votes)
        overflow = len(self._held) - self._limit
        if overflow > 0:
            for _ in range(overflow):
                self._held.popleft()
            self.dropped += overflow
            log.error("vote outbox full: %d oldest votes dropped", overflow)
        if not self._held:
            return 0
        batch = list(self._held)
        try:
            self._record(batch)  # kept first: a coordinator restarting finds them in the store
        except HcpError as exc:
            log.warning("%d votes held: the store refused them (%s)", len(batch), exc.code)
            return 0
        self._held.clear()
        self._deliver(batch)
        return len(batch)
