"""Durable workloads: batched writes (rows and their events in one transaction), reads, usage."""

from __future__ import annotations

import logging
from collections import namedtuple
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Table, bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hcp.clock import utcnow
from hcp.errors import StoreError, ValidationError
from hcp.fields import check_cursor_int
from hcp.store import models as m
from hcp.store.db import transaction
from hcp.store.events import EventKind
from hcp.workloads.models import WorkloadRow
from hcp.workloads.types import (
    ACTIVE_STATES,
    TypeUsage,
    UsageTotals,
    Workload,
    WorkloadState,
    WorkloadType,
)

log = logging.getLogger(__name__)

_T = WorkloadRow.__table__
_COLUMNS = [c.name for c in _T.columns]
_UPDATABLE = [c for c in _COLUMNS
              if c not in ("id", "seq", "owner", "created_at", "idempotency_key", "container")]
_Row = namedtuple("_Row", _COLUMNS)  # type: ignore[misc]  # a row by column name, for from_row


@dataclass
class Batch:
    """One store transaction's worth of router changes, as plain row dicts (no live objects)."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, Workload] = field(default_factory=dict, repr=False)  # live objects, for a retry

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.events)


@dataclass(frozen=True)
class GpuInventory:
    device_id: str
    model: str
    memory_gb: float
    facility: str


def _bind_processor(typ: Any, dialect: Any) -> Any:
    proc = typ.bind_processor(dialect)
    if proc is None and isinstance(typ, JSON) and dialect.name == "postgresql":
        # psycopg adapts JSON through its own wrapper (SQLAlchemy adds it at statement level).
        from psycopg.types.json import Json

        return lambda v: None if v is None else Json(v)
    return proc


def to_row(w: Workload) -> dict[str, Any]:
    return {
        "id": w.id, "seq": w.seq, "owner": w.owner, "name": w.name, "type": w.type.value,
        "priority": w.priority, "state": w.state.value, "requirements": dict(w.requirements),
        "sla": dict(w.sla), "interruptible": w.interruptible, "duration_seconds": w.duration_seconds,
        "device_id": w.device_id, "created_at": w.created_at, "scheduled_at": w.scheduled_at,
        "started_at": w.started_at, "finished_at": w.finished_at, "gpu_ms": w.gpu_ms,
        "cost_micro_usd": w.cost_micro_usd, "preempted_mining": w.preempted_mining,
        "detail": w.detail[:500], "updated_at": utcnow(), "idempotency_key": w.idempotency_key,
        "container": w.container, "container_started_at": w.container_started_at,
    }


def from_row(r: Any) -> Workload:
    """From a mapped ``WorkloadRow`` or anything with its column names as attributes."""
    return Workload(
        id=r.id, owner=r.owner, type=WorkloadType(r.type), priority=r.priority,
        state=WorkloadState(r.state), requirements=dict(r.requirements or {}), sla=dict(r.sla or {}),
        interruptible=r.interruptible, duration_seconds=r.duration_seconds, created_at=r.created_at,
        seq=r.seq, name=r.name, device_id=r.device_id, scheduled_at=r.scheduled_at,
        started_at=r.started_at, finished_at=r.finished_at, gpu_ms=r.gpu_ms,
        cost_micro_usd=r.cost_micro_usd, preempted_mining=r.preempted_mining, detail=r.detail or "",
        idempotency_key=r.idempotency_key, container=r.container,
        container_started_at=r.container_started_at,
    )


def workload_event(w: Workload, kind: str = EventKind.WORKLOAD.value, reason: str | None = None,
                   **extra: Any) -> dict[str, Any]:
    """A row of the shared ``events`` log (what the WebSocket streams)."""
    payload = {"workload_id": w.id, "owner": w.owner, "state": w.state.value, "device_id": w.device_id}
    payload.update(extra)
    return {"at": utcnow(), "kind": kind, "device_id": w.device_id, "facility": None,
            "payload": payload, "reason": None if reason is None else reason[:200]}


class WorkloadRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._plans: dict[tuple[str, tuple[str, ...]], tuple[str, list[Any]]] = {}
        self._selects: dict[tuple[tuple[str, ...], str], tuple[str, list[Any]]] = {}

    # -- writes -------------------------------------------------------------------------
    def ping(self) -> None:
        """Whether the store answers at all (raises ``StoreError`` if not)."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise StoreError(f"store unreachable: {exc}") from exc

    def apply(self, batch: Batch) -> None:
        """All of a batch or none of it: new rows, changed rows and their events, one transaction.

        Each part is one executemany, so a batch of thousands costs a handful of round trips.
        """
        if not batch:
            return
        with self._tx() as s:
            conn = s.connection()
            if batch.inserts:
                self._insert_many(conn, _T, batch.inserts)
            if batch.updates:
                stmt = (update(_T).where(_T.c.id == bindparam("_id"))
                        .values({c: bindparam(c) for c in _UPDATABLE}))
                s.execute(stmt, [{"_id": r["id"], **{c: r[c] for c in _UPDATABLE}}
                                 for r in batch.updates])
            if batch.events:
                self._insert_many(conn, m.Event.__table__, batch.events)

    def _insert_many(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """One DBAPI executemany with the columns' own bind processors (JSON, UTC datetimes).

        Same values as ``conn.execute(insert(table), rows)`` would bind, without its per-row
        parameter machinery, which is most of the cost of a batch of thousands.
        """
        cols = list(rows[0])
        key = (table.name, tuple(cols))
        plan = self._plans.get(key)
        if plan is None:
            dialect = self.engine.dialect
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in cols)}) "
                   f"VALUES ({', '.join([mark] * len(cols))})")
            plan = self._plans[key] = (sql, [_bind_processor(table.c[c].type, dialect) for c in cols])
        sql, procs = plan
        params = [tuple(r[c] if p is None else p(r[c]) for c, p in zip(cols, procs)) for r in rows]
        conn.exec_driver_sql(sql, params)

    def insert_one(self, w: Workload, event: dict[str, Any] | None = None) -> None:
        """One workload per transaction: the naive path (the benchmark's baseline)."""
        with self._tx() as s:
            s.add(WorkloadRow(**to_row(w)))
            if event is not None:
                s.add(m.Event(**event))

    # -- reads --------------------------------------------------------------------------
    def max_seq(self) -> int:
        with self._tx() as s:
            return int(s.scalar(select(func.max(WorkloadRow.seq))) or 0)

    def load_active(self) -> list[Workload]:
        q = (select(WorkloadRow).where(WorkloadRow.state.in_([st.value for st in ACTIVE_STATES]))
             .order_by(WorkloadRow.seq))
        with self._tx() as s:
            return [from_row(r) for r in s.scalars(q)]

    def get(self, workload_id: str) -> Workload | None:
        rows = self._select([("id = ", workload_id)], "", 1)
        return rows[0] if rows else None

    def list(self, owner: str | None = None, state: WorkloadState | None = None, limit: int = 50,
             before_seq: int | None = None,
             type: WorkloadType | None = None) -> tuple[list[Workload], int | None]:
        """Newest first; returns the page and the ``seq`` to pass as ``before_seq`` next (or None)."""
        limit = max(1, min(limit, 500))
        filters = [("owner", owner), ("state", state.value if state else None),
                   ("type", type.value if type else None)]
        where = [(f"{col} = ", v) for col, v in filters if v is not None]
        if before_seq is not None:
            where.append(("seq < ", before_seq))
        rows = self._select(where, "ORDER BY seq DESC", limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more and rows else None)

    def by_keys(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Workload]:
        """Workloads by (owner, idempotency key), for the keys that exist."""
        out: dict[tuple[str, str], Workload] = {}
        for owner in {o for o, _ in keys}:
            wanted = [k for o, k in keys if o == owner]
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                q = select(WorkloadRow).where(WorkloadRow.owner == owner,
                                              WorkloadRow.idempotency_key.in_(chunk))
                with self._tx() as s:
                    for r in s.scalars(q):
                        out[(owner, r.idempotency_key)] = from_row(r)
        return out

    def page(self, owner: str | None, state: str | None, type: str | None, limit: int,
             cursor: str | None) -> tuple[list[Workload], str | None]:
        """``list`` with the API's string filters and opaque cursor; bad ones are a 422."""
        try:
            st = WorkloadState(state) if state else None
            typ = WorkloadType(type) if type else None
        except ValueError:
            raise ValidationError(f"bad state or type: {state!r}, {type!r}",
                                  state=state, type=type) from None
        before = check_cursor_int(cursor)
        items, nxt = self.list(owner, st, limit, before, typ)
        return items, None if nxt is None else str(nxt)

    def _select(self, where: list[tuple[str, Any]], order: str, limit: int) -> list[Workload]:
        """Rows through the driver with the columns' own result processors (UTC datetimes, JSON).

        The API lists a page on every request; building the statement and mapped objects was
        most of a page's cost, so each filter combination's SQL is built once and rows become
        ``Workload`` values directly.
        """
        key = (tuple(w for w, _ in where), order)
        plan = self._selects.get(key)
        if plan is None:
            dialect = self.engine.dialect
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            quote = dialect.identifier_preparer.quote
            cond = " AND ".join(f"{w}{mark}" for w, _ in where)
            sql = (f"SELECT {', '.join(quote(c) for c in _COLUMNS)} FROM {quote(_T.name)}"
                   f"{' WHERE ' + cond if cond else ''} {order} LIMIT {mark}")
            procs = [c.type._cached_result_processor(dialect, None) for c in _T.columns]
            plan = self._selects[key] = (sql, procs)
        sql, procs = plan
        try:
            with self.engine.connect() as conn:
                raw = conn.exec_driver_sql(sql, (*(v for _, v in where), limit)).fetchall()
        except SQLAlchemyError as exc:
            raise StoreError(f"store read failed: {exc}") from exc
        return [from_row(_Row._make([v if p is None else p(v) for p, v in zip(procs, r)]))
                for r in raw]

    def count(self) -> int:
        with self._tx() as s:
            return int(s.scalar(select(func.count()).select_from(WorkloadRow)) or 0)

    def usage(self, owner: str | None = None) -> UsageTotals:
        """Metered totals of finished run segments, overall and per workload type."""
        q = (select(WorkloadRow.type, func.count(), func.coalesce(func.sum(WorkloadRow.gpu_ms), 0),
                    func.coalesce(func.sum(WorkloadRow.cost_micro_usd), 0))
             .where(WorkloadRow.gpu_ms > 0).group_by(WorkloadRow.type))
        if owner is not None:
            q = q.where(WorkloadRow.owner == owner)
        with self._tx() as s:
            rows = s.execute(q).all()
        by_type = {t: TypeUsage() for t in WorkloadType}
        for typ, n, ms, cost in rows:
            by_type[WorkloadType(typ)] = TypeUsage(int(n), int(ms), int(cost))
        return UsageTotals(owner, by_type)

    def gpu_inventory(self) -> list[GpuInventory]:
        with self._tx() as s:
            return [GpuInventory(g.id, g.model, g.memory_gb, g.facility)
                    for g in s.scalars(select(m.Gpu).order_by(m.Gpu.id))]

    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self._session, "workload store")
