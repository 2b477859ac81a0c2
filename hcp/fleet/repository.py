"""Reads and writes of fleet state: device modes, counters, shares and the event log."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from hcp.clock import utcnow
from hcp.errors import ConflictError, UnknownDeviceError
from hcp.fleet.modes import GpuMode, SwitchReport
from hcp.store import models as m
from hcp.store.db import transaction
from hcp.store.events import EventKind

if TYPE_CHECKING:
    from hcp.fleet.spec import FleetSpec
    from hcp.mining import Share

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceStateRecord:
    device_id: str
    kind: str
    mode: GpuMode
    mode_since: datetime
    generation: int
    hashes_done: int
    shares_found: int
    inference_requests: int
    mining_state: dict[str, Any] | None
    restarts: int
    updated_at: datetime
    held_by: str | None = None  # hcp.fleet.holds.Hold.key


@dataclass(frozen=True)
class EventRecord:
    id: int
    at: datetime
    kind: str
    device_id: str | None
    facility: str | None
    from_mode: str | None
    to_mode: str | None
    generation: int | None
    total_ms: float | None
    phases_ms: dict[str, float | None]
    reason: str | None
    payload: dict[str, Any] | None
    correlation_id: str | None = None  # the request or decision the event answered


def event_record(e: Any) -> EventRecord:
    """An ``events`` row (mapped or Core) as a record."""
    return EventRecord(
        id=e.id, at=e.at, kind=e.kind, device_id=e.device_id, facility=e.facility,
        from_mode=e.from_mode, to_mode=e.to_mode, generation=e.generation, total_ms=e.total_ms,
        phases_ms={"pause": e.pause_ms, "save_state": e.save_state_ms,
                   "activate": e.activate_ms, "health_check": e.health_check_ms},
        reason=e.reason, payload=e.payload, correlation_id=e.correlation_id)


class _Keep:
    """Leave a column as it is (a default distinct from None)."""


KEEP = _Keep()


def _same_holder(holder: str | None) -> Any:
    col = m.DeviceState.held_by
    return col.is_(None) if holder is None else col == holder


class FleetRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    # -- fleet --------------------------------------------------------------------------
    def sync_fleet(self, spec: FleetSpec) -> None:
        """Upsert facilities and devices from the spec; new devices start IDLE (GPUs) or MINING (ASICs)."""
        now = utcnow()
        with self._tx() as s:
            for fac in spec.facilities:
                s.merge(m.Facility(name=fac.name, location=fac.location, capacity_mw=fac.capacity_mw,
                                   pue=fac.pue, updated_at=now))
            s.flush()
            for fac in spec.facilities:
                for g in fac.gpus:
                    s.merge(m.Gpu(id=g.id, facility=fac.name, model=g.model, memory_gb=g.memory_gb,
                                  power_w=g.power_w, device_index=g.device_index))
                    self._ensure_state(s, g.id, "gpu", GpuMode.IDLE, now)
                for a in fac.asics:
                    s.merge(m.Asic(id=a.id, facility=fac.name, model=a.model, hashrate_ths=a.hashrate_ths,
                                   power_w=a.power_w))
                    self._ensure_state(s, a.id, "asic", GpuMode.MINING, now)

    @staticmethod
    def _ensure_state(s: Session, device_id: str, kind: str, mode: GpuMode, now: datetime) -> None:
        if s.get(m.DeviceState, device_id) is None:
            s.add(m.DeviceState(device_id=device_id, kind=kind, mode=mode.value, mode_since=now,
                                generation=0, hashes_done=0, inference_requests=0, restarts=0,
                                updated_at=now))

    # -- device state -------------------------------------------------------------------
    def device_state(self, device_id: str) -> DeviceStateRecord:
        with self._tx() as s:
            row = s.get(m.DeviceState, device_id)
            if row is None:
                raise UnknownDeviceError(f"no device {device_id!r} in the store", device_id=device_id)
            return self._state(s, row)

    def device_states(self) -> list[DeviceStateRecord]:
        with self._tx() as s:
            return [self._state(s, r) for r in s.scalars(select(m.DeviceState).order_by(m.DeviceState.device_id))]

    def _state(self, s: Session, row: m.DeviceState) -> DeviceStateRecord:
        shares = s.scalar(select(func.count()).select_from(m.Share).where(m.Share.device_id == row.device_id))
        return DeviceStateRecord(
            device_id=row.device_id, kind=row.kind, mode=GpuMode(row.mode), mode_since=row.mode_since,
            generation=row.generation, hashes_done=row.hashes_done, shares_found=int(shares or 0),
            inference_requests=row.inference_requests, mining_state=row.mining_state,
            restarts=row.restarts, updated_at=row.updated_at, held_by=row.held_by,
        )

    def commit_mode_change(
        self,
        report: SwitchReport,
        expected_generation: int,
        facility: str | None = None,
        mining_state: dict[str, Any] | None = None,
        hashes_done: int | None = None,
        correlation_id: str | None = None,
        held_by: str | None | _Keep = KEEP,
    ) -> int:
        """Make a switch durable: state row and its event in one transaction.

        The compare-and-set on ``generation`` means a stale or repeated commit (say, a
        retried call after a restart) is refused instead of being applied twice.
        ``held_by`` (a hold's key, or None to clear it) is committed with the change; by
        default the device's holder is left as it is. Returns the new generation.
        """
        new_gen = expected_generation + 1
        values: dict[str, Any] = {"mode": report.to_mode.value, "mode_since": report.at,
                                  "generation": new_gen, "updated_at": report.at}
        if not isinstance(held_by, _Keep):
            values["held_by"] = held_by
        if mining_state is not None:
            values["mining_state"] = mining_state
        if hashes_done is not None:
            values["hashes_done"] = hashes_done
        with self._tx() as s:
            res = s.execute(update(m.DeviceState)
                            .where(m.DeviceState.device_id == report.device_id,
                                   m.DeviceState.generation == expected_generation)
                            .values(**values))
            if res.rowcount != 1:
                raise ConflictError(
                    f"device {report.device_id!r} is not at generation {expected_generation}; "
                    "the mode change was not applied", device_id=report.device_id)
            p = report.phases
            s.add(m.Event(at=report.at, kind=EventKind.MODE_CHANGE.value, device_id=report.device_id,
                          facility=facility, from_mode=report.from_mode.value,
                          to_mode=report.to_mode.value, generation=new_gen,
                          total_ms=report.total_ms, pause_ms=p.pause_ms,
                          save_state_ms=p.save_state_ms, activate_ms=p.activate_ms,
                          health_check_ms=p.health_check_ms, reason=report.reason[:200] or None,
                          correlation_id=correlation_id))
        return new_gen

    def set_holder(self, device_id: str, expected_generation: int, held_by: str | None,
                   expected_holder: str | None) -> None:
        """Take or give back a hold without a mode change (the device is already in the
        holder's mode). Compare-and-set on generation and the current holder, so two
        would-be holders cannot both win."""
        with self._tx() as s:
            res = s.execute(update(m.DeviceState)
                            .where(m.DeviceState.device_id == device_id,
                                   m.DeviceState.generation == expected_generation,
                                   _same_holder(expected_holder))
                            .values(held_by=held_by, updated_at=utcnow()))
            if res.rowcount != 1:
                raise ConflictError(f"device {device_id!r} changed while its hold was updated; "
                                    "not applied", device_id=device_id)

    def checkpoint(self, device_id: str, mining_state: dict[str, Any] | None, hashes_done: int,
                   inference_requests: int) -> None:
        with self._tx() as s:
            s.execute(update(m.DeviceState).where(m.DeviceState.device_id == device_id).values(
                mining_state=mining_state, hashes_done=hashes_done,
                inference_requests=inference_requests, updated_at=utcnow()))

    def note_restart(self, device_id: str, facility: str | None, payload: dict[str, Any]) -> None:
        with self._tx() as s:
            s.execute(update(m.DeviceState).where(m.DeviceState.device_id == device_id)
                      .values(restarts=m.DeviceState.restarts + 1))
            s.add(m.Event(at=utcnow(), kind=EventKind.ACTOR_RECOVERED.value, device_id=device_id, facility=facility,
                          payload=payload))

    # -- shares -------------------------------------------------------------------------
    def record_shares(self, device_id: str, shares: Iterable[Share]) -> int:
        """Insert shares once each; a share re-found after a restart is ignored. Returns rows added."""
        rows = [{"device_id": device_id, "job_id": sh.job_id, "extranonce": sh.extranonce,
                 "nonce": sh.nonce, "hash_hex": sh.hash_hex, "difficulty": sh.difficulty, "at": utcnow()}
                for sh in shares]
        if not rows:
            return 0
        dialect = self.engine.dialect.name
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(m.Share.__table__)
        stmt = (ins.values(rows).on_conflict_do_nothing(index_elements=["job_id", "extranonce", "nonce"])
                .returning(m.Share.__table__.c.id))
        with self._tx() as s:
            # Counted from RETURNING: rowcount of a multi-row insert is not reliable across drivers.
            return len(s.execute(stmt).all())

    # -- events -------------------------------------------------------------------------
    def record_event(self, kind: str, device_id: str | None = None, facility: str | None = None,
                     payload: dict[str, Any] | None = None, reason: str | None = None) -> None:
        with self._tx() as s:
            s.add(m.Event(at=utcnow(), kind=kind, device_id=device_id, facility=facility,
                          payload=payload, reason=reason))

    def events(self, device_id: str | None = None, kind: str | None = None, limit: int = 100,
               before_id: int | None = None) -> list[EventRecord]:
        q = select(m.Event).order_by(m.Event.id.desc()).limit(max(1, min(limit, 1000)))
        if device_id is not None:
            q = q.where(m.Event.device_id == device_id)
        if kind is not None:
            q = q.where(m.Event.kind == kind)
        if before_id is not None:
            q = q.where(m.Event.id < before_id)
        with self._tx() as s:
            return [event_record(e) for e in s.scalars(q)]

    # -- plumbing -----------------------------------------------------------------------
    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self._session, "fleet store")
