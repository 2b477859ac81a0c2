"""``RunStore`` on the SQL store (the platform's database), and the reads the instance API
makes of it: log lines and samples after a cursor, runs, instance specs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from hcp.agent import models as m
from hcp.agent.messages import (
    InstanceSpec,
    LogLine,
    MetricSample,
    NetworkMode,
    Phase,
    Reason,
    ResumePoint,
    RunRecord,
)
from hcp.store.db import transaction

_UNSETTLED = tuple(p.value for p in Phase if p not in (Phase.SETTLED, Phase.FAILED))


def instance_writer(renter: str, spec: InstanceSpec, now: datetime) -> Callable[[Session, str], None]:
    """An ``attach`` hook for ``MarketplaceService.create_job``: the spec is stored in the
    job's own transaction, so no agent ever sees the job without it."""

    def write(s: Session, job_id: str) -> None:
        s.add(m.Instance(job_id=job_id, renter=renter, network=spec.network.value,
                         command=list(spec.command) if spec.command else None,
                         env=dict(spec.env) or None, created_at=now))

    return write


def _run_record(r: m.Run) -> RunRecord:
    return RunRecord(job_id=r.job_id, agent_id=r.agent_id, provider=r.provider, gpu_id=r.gpu_id,
                     phase=Phase(r.phase), updated_at=r.updated_at, container_id=r.container_id,
                     image_id=r.image_id, reason=None if r.reason is None else Reason(r.reason),
                     detail=r.detail, exit_code=r.exit_code, oom_killed=r.oom_killed,
                     simulated_gpu=r.simulated_gpu, network=NetworkMode(r.network),
                     container_started_at=r.container_started_at,
                     container_finished_at=r.container_finished_at, usage_seconds=r.usage_seconds)


class SqlRunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    def _tx(self) -> AbstractContextManager[Session]:
        return transaction(self._session, "agent store")

    def _insert_new(self, table: Any, rows: list[dict[str, Any]]) -> None:
        """Insert rows, skipping keys already stored (a retried append)."""
        if not rows:
            return
        name = self.engine.dialect.name
        if name == "postgresql":
            stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
        elif name == "sqlite":
            stmt = sqlite.insert(table).on_conflict_do_nothing()
        else:  # pragma: no cover - hcp runs on SQLite and PostgreSQL
            stmt = insert(table)
        with self._tx() as s:
            s.execute(stmt, rows)

    # -- instance specs ------------------------------------------------------------------
    def instance_spec(self, job_id: str) -> InstanceSpec | None:
        with self._tx() as s:
            row = s.get(m.Instance, job_id)
            if row is None:
                return None
            return InstanceSpec(network=NetworkMode(row.network),
                                command=tuple(row.command) if row.command else None,
                                env=dict(row.env or {}))

    # -- runs -----------------------------------------------------------------------------
    def save_run(self, run: RunRecord) -> None:
        values = run.to_dict()
        for k in ("updated_at", "container_started_at", "container_finished_at"):
            values[k] = getattr(run, k)
        with self._tx() as s:
            s.merge(m.Run(**values))

    def get_run(self, job_id: str) -> RunRecord | None:
        with self._tx() as s:
            row = s.get(m.Run, job_id)
            return None if row is None else _run_record(row)

    def runs_of(self, agent_id: str, unsettled_only: bool = True) -> list[RunRecord]:
        with self._tx() as s:
            stmt = select(m.Run).where(m.Run.agent_id == agent_id)
            if unsettled_only:
                stmt = stmt.where(m.Run.phase.in_(_UNSETTLED))
            return [_run_record(r) for r in s.scalars(stmt.order_by(m.Run.job_id))]

    # -- logs -----------------------------------------------------------------------------
    def append_logs(self, job_id: str, lines: list[LogLine]) -> None:
        self._insert_new(m.LogRow.__table__, [
            {"job_id": job_id, "seq": ln.seq, "stream": ln.stream, "ts_ns": ln.ts_ns,
             "text": ln.text, "partial": ln.partial} for ln in lines])

    def log_resume(self, job_id: str, margin_s: int) -> ResumePoint:
        with self._tx() as s:
            last_seq, last_ts = s.execute(
                select(func.max(m.LogRow.seq), func.max(m.LogRow.ts_ns))
                .where(m.LogRow.job_id == job_id)).one()
            if last_seq is None:
                return ResumePoint(0, 0, 0)
            since_s = max(1, int(last_ts) // 1_000_000_000 - margin_s)
            skip = s.scalar(select(func.count()).select_from(m.LogRow).where(
                m.LogRow.job_id == job_id, m.LogRow.ts_ns >= since_s * 1_000_000_000))
            return ResumePoint(int(last_seq) + 1, since_s, int(skip or 0))

    def read_logs(self, job_id: str, after: int, limit: int) -> list[LogLine]:
        t = m.LogRow.__table__.c
        with self._tx() as s:  # plain rows, not ORM objects: sockets read this in a loop
            rows = s.execute(select(t.seq, t.stream, t.ts_ns, t.text, t.partial)
                             .where(t.job_id == job_id, t.seq > after).order_by(t.seq).limit(limit))
            return [LogLine(int(r[0]), r[1], int(r[2]), r[3], bool(r[4])) for r in rows]

    # -- metrics --------------------------------------------------------------------------
    def append_metrics(self, job_id: str, samples: list[MetricSample]) -> None:
        self._insert_new(m.MetricRow.__table__, [
            {"job_id": job_id, "seq": x.seq, "at": x.at, "cpu_pct": x.cpu_pct,
             "mem_bytes": x.mem_bytes, "mem_limit_bytes": x.mem_limit_bytes, "pids": x.pids,
             "gpu": dict(x.gpu)} for x in samples])

    def next_metric_seq(self, job_id: str) -> int:
        with self._tx() as s:
            top = s.scalar(select(func.max(m.MetricRow.seq)).where(m.MetricRow.job_id == job_id))
            return 0 if top is None else int(top) + 1

    def read_metrics(self, job_id: str, after: int, limit: int) -> list[MetricSample]:
        with self._tx() as s:
            rows = s.scalars(select(m.MetricRow).where(m.MetricRow.job_id == job_id,
                                                       m.MetricRow.seq > after)
                             .order_by(m.MetricRow.seq).limit(limit))
            return [MetricSample(r.seq, r.at, r.cpu_pct, r.mem_bytes, r.mem_limit_bytes, r.pids,
                                 r.gpu) for r in rows]

    def last_evidence_at(self, job_id: str) -> datetime | None:
        with self._tx() as s:
            ts = s.scalar(select(func.max(m.LogRow.ts_ns)).where(m.LogRow.job_id == job_id))
            at = s.scalar(select(func.max(m.MetricRow.at)).where(m.MetricRow.job_id == job_id))
        seen = [t for t in (None if ts is None else datetime.fromtimestamp(ts / 1e9, UTC), at)
                if t is not None]
        if at is not None and at.tzinfo is None:  # SQLite aggregates lose the type decorator
            seen = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in seen]
        return max(seen) if seen else None
