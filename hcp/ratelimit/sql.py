"""Rate counters in the SQL store: the embedded default (SQLite) and PostgreSQL.

One statement decides and counts: ``INSERT .. ON CONFLICT DO UPDATE SET hits = hits + n
WHERE hits + n <= limit RETURNING hits``. When the window has no room for ``n`` more the WHERE
fails, no row comes back and nothing is counted. PostgreSQL row-locks the conflicting row; SQLite serializes
writers; so the limit holds exactly under any concurrency.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hcp.errors import StoreError
from hcp.ratelimit.models import RateCounter
from hcp.ratelimit.window import WindowLimiter

log = logging.getLogger(__name__)


class SqlRateLimiter(WindowLimiter):
    def __init__(self, engine: Engine, prune_every: int = 1000) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise StoreError(f"SqlRateLimiter supports PostgreSQL and SQLite, not {engine.dialect.name}")
        self._prune_every = prune_every
        self._since_prune = 0

    def _count(self, key: str, n: int, limit: int, window_seconds: int, start: int, end: int,
               now: datetime) -> int | None:
        table = RateCounter.__table__
        stmt = self._insert(table).values(key=key, window_seconds=window_seconds,
                                          window_start=start, hits=n)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key, table.c.window_seconds, table.c.window_start],
            set_={"hits": table.c.hits + n},
            where=table.c.hits + n <= limit,
        ).returning(table.c.hits)
        try:
            with self.engine.begin() as conn:
                row = conn.execute(stmt).first()
        except OperationalError as exc:
            raise StoreError(f"rate limiter store unavailable: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"rate limiter store error: {exc}") from exc
        self._maybe_prune(now)
        return None if row is None else max(0, limit - int(row[0]))

    def _maybe_prune(self, now: datetime) -> None:
        self._since_prune += 1
        if self._since_prune < self._prune_every:
            return
        self._since_prune = 0
        self.prune(now)

    def prune(self, now: datetime, keep_seconds: int = 7 * 24 * 3600) -> int:
        """Delete windows that ended long ago (no window of any caller is that long)."""
        table = RateCounter.__table__
        cutoff = int(now.timestamp()) - keep_seconds
        try:
            with self.engine.begin() as conn:
                res = conn.execute(delete(table).where(table.c.window_start < cutoff))
        except SQLAlchemyError as exc:
            log.warning("rate counter pruning failed: %s", exc)
            return 0
        return int(res.rowcount or 0)
