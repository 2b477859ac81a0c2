"""Inference usage per client: requests and input tokens of ``/v1/embeddings``, per model.

One row per (owner, model), incremented by an upsert, so a batch of requests costs one
statement per client in it and two API replicas never lose each other's counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Engine, String, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from hcp.clock import utcnow
from hcp.errors import StoreError, ValidationError
from hcp.store.models import Base, UtcDateTime

log = logging.getLogger(__name__)


class InferenceUsage(Base):
    """Created by migration 0007_api_usage."""

    __tablename__ = "inference_usage"
    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SqlUsageLedger:
    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise StoreError(
                f"usage ledger supports PostgreSQL and SQLite, not {engine.dialect.name}"
            )
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def add(self, owner: str, model: str, requests: int, tokens: int) -> None:
        self.add_many(model, {owner: (requests, tokens)})

    def add_many(self, model: str, per_owner: Mapping[str, tuple[int, int]]) -> None:
        """Add (requests, tokens) per owner in one transaction: all of a batch or none."""
        if any(r < 0 or t < 0 for r, t in per_owner.values()):
            raise ValidationError("usage increments must not be negative")
        t = InferenceUsage.__table__
        try:
            with self.engine.begin() as conn:
                for owner, (requests, tokens) in sorted(per_owner.items()):
                    if requests == 0 and tokens == 0:
                        continue
                    stmt = self._insert(t).values(
                        owner=owner, model=model, requests=requests, input_tokens=tokens,
                        updated_at=utcnow(),
                    )
                    stmt = stmt.on_conflict_do_update(
                        index_elements=[t.c.owner, t.c.model],
                        set_={
                            "requests": t.c.requests + requests,
                            "input_tokens": t.c.input_tokens + tokens,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    )
                    conn.execute(stmt)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record inference usage: {exc}") from exc

    def totals(self, owner: str | None) -> dict[str, Any]:
        """Totals for one owner (or everyone): requests, input_tokens, and the same by model."""
        t = InferenceUsage.__table__
        q = select(t.c.model, func.sum(t.c.requests), func.sum(t.c.input_tokens)).group_by(
            t.c.model
        )
        if owner is not None:
            q = q.where(t.c.owner == owner)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(q.order_by(t.c.model)).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read inference usage: {exc}") from exc
        by_model = {r[0]: {"requests": int(r[1]), "input_tokens": int(r[2])} for r in rows}
        return {
            "requests": sum(v["requests"] for v in by_model.values()),
            "input_tokens": sum(v["input_tokens"] for v in by_model.values()),
            "by_model": by_model,
        }
