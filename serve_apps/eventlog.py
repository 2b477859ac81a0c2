"""Read views of the append-only ``events`` table: switch history and the live feed.

Switch events are written by the GPU and facility actors (kind ``mode_change``); workload
state changes by the router (kind ``workload``). Reading here never blocks a writer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from hcp.errors import StoreError
from hcp.fleet.repository import EventRecord, FleetRepository, event_record
from hcp.store import models as m
from hcp.store.events import EventKind

SWITCH_KIND = EventKind.MODE_CHANGE.value
WORKLOAD_KIND = EventKind.WORKLOAD.value
LIVE_KINDS = (SWITCH_KIND, WORKLOAD_KIND)


def event_view(e: EventRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "kind": e.kind,
        "device_id": e.device_id,
        "facility": e.facility,
        "from_mode": e.from_mode,
        "to_mode": e.to_mode,
        "generation": e.generation,
        "total_ms": e.total_ms,
        "reason": e.reason,
        "payload": e.payload,
        "phases_ms": dict(e.phases_ms),
        "correlation_id": e.correlation_id,
    }


class StoreSwitchLog:
    def __init__(self, repo: FleetRepository) -> None:
        self._repo = repo

    def switches(
        self, device_id: str | None, limit: int, before_id: int | None
    ) -> list[dict[str, Any]]:
        rows = self._repo.events(
            device_id=device_id, kind=SWITCH_KIND, limit=limit, before_id=before_id
        )
        return [event_view(e) for e in rows]


class StoreEventFeed:
    """The live kinds of the event log, read by id.

    ``scan`` also returns the ids of events of other kinds: the live feed needs every id it
    has passed to tell an id that is not in the log yet (a transaction that took its id
    earlier and commits later, which PostgreSQL allows) from one that is simply not live.
    """

    def __init__(self, engine: Engine, kinds: tuple[str, ...] = LIVE_KINDS) -> None:
        self._engine = engine
        self._kinds = kinds

    def after(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        return self._live(self._rows(m.Event.id > after_id, limit))

    def scan(self, after_id: int, limit: int) -> tuple[list[dict[str, Any]], list[int]]:
        """(live events, every id read), both oldest first, for ids after ``after_id``."""
        rows = self._rows(m.Event.id > after_id, limit, all_kinds=True)
        return self._live(rows), [r.id for r in rows]

    def by_ids(self, ids: list[int]) -> tuple[list[dict[str, Any]], list[int]]:
        """(live events, every id found) among ``ids``: the late commits of known gaps."""
        if not ids:
            return [], []
        rows = self._rows(m.Event.id.in_(ids), len(ids), all_kinds=True)
        return self._live(rows), [r.id for r in rows]

    def _rows(self, cond: Any, limit: int, all_kinds: bool = False) -> list[Any]:
        q = select(m.Event).where(cond).order_by(m.Event.id).limit(limit)
        if not all_kinds:
            q = q.where(m.Event.kind.in_(self._kinds))
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(q).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the event log: {exc}") from exc

    def _live(self, rows: list[Any]) -> list[dict[str, Any]]:
        return [event_view(event_record(r)) for r in rows if r.kind in self._kinds]

    def last_id(self) -> int:
        try:
            with self._engine.connect() as conn:
                return int(
                    conn.execute(select(func.coalesce(func.max(m.Event.id), 0))).scalar_one()
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the event log: {exc}") from exc
