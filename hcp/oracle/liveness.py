"""Missed heartbeats, counted per provider by one validator.

A heartbeat is missed when ``interval + grace`` passes without one; the m-th in a row is
missed at ``last + m·interval + grace``. When more than ``missed_heartbeats_limit`` are missed
in a row (the 4th, by default), the tracker votes DOWNTIME on the outage once, naming it by the
last heartbeat seen (``down:<seq>``) so that every validator that saw that heartbeat names the
same outage. The first heartbeat after it votes that the provider is back (``up:<seq>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hcp.clock import Clock
from hcp.oracle.findings import (
    Check,
    Observation,
    Outcome,
    downtime_subject,
    resumption_subject,
)
from hcp.oracle.heartbeat import AcceptedHeartbeat
from hcp.oracle.settings import OracleSettings
from hcp.oracle.wire import to_ms


@dataclass(slots=True)
class Watch:
    registered_ms: int
    last_at: datetime           # the last accepted heartbeat's arrival (or registration)
    last_seq: int | None
    reported: str | None = None  # the outage subject voted on, until the provider is back


class HeartbeatTracker:
    def __init__(self, validator_id: str, settings: OracleSettings, clock: Clock) -> None:
        self.validator_id = validator_id
        self.clock = clock
        self.interval = timedelta(seconds=settings.heartbeat_interval_seconds)
        self.grace = timedelta(seconds=settings.heartbeat_grace_seconds)
        self.limit = settings.missed_heartbeats_limit
        self._watch: dict[str, Watch] = {}

    def expect(self, provider_id: str, registered_at: datetime) -> None:
        """Start counting for a registered provider (from its registration time, which every
        validator knows alike); a provider already watched is left as it is."""
        if provider_id not in self._watch:
            self._watch[provider_id] = Watch(to_ms(registered_at), registered_at, None)

    def forget(self, provider_id: str) -> None:
        self._watch.pop(provider_id, None)

    def watched(self) -> frozenset[str]:
        return frozenset(self._watch)

    def watch(self, provider_id: str) -> Watch | None:
        return self._watch.get(provider_id)

    def restore(self, provider_id: str, watch: Watch) -> None:
        self._watch[provider_id] = watch

    def record(self, accepted: AcceptedHeartbeat) -> list[Observation]:
        """Count a verified heartbeat; the resumption vote if it ends a reported outage."""
        hb = accepted.heartbeat
        w = self._watch.get(hb.provider_id)
        if w is None:
            w = self._watch[hb.provider_id] = Watch(to_ms(accepted.received_at),
                                                    accepted.received_at, None)
        w.last_at, w.last_seq = accepted.received_at, hb.seq
        if w.reported is None:
            return []
        subject, w.reported = resumption_subject(w.reported), None
        return [Observation(self.validator_id, hb.provider_id, Check.HEARTBEAT, subject,
                            Outcome.OK, accepted.received_at)]

    def missed(self, provider_id: str, now: datetime | None = None) -> int:
        w = self._watch[provider_id]
        return self._missed(w, now or self.clock.now())

    def _missed(self, w: Watch, now: datetime) -> int:
        late = now - w.last_at - self.grace
        return max(0, late // self.interval)

    def tick(self) -> list[Observation]:
        """DOWNTIME votes for the outages that just passed the limit (one per outage)."""
        now = self.clock.now()
        out = []
        for pid, w in self._watch.items():
            if w.reported is None and self._missed(w, now) > self.limit:
                w.reported = downtime_subject(w.last_seq, w.registered_ms)
                out.append(Observation(self.validator_id, pid, Check.HEARTBEAT, w.reported,
                                       Outcome.DOWNTIME, now))
        return out
