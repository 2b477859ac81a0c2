"""Provider offers: validation, and the indexed search with filters, sorting and keyset pages."""

from __future__ import annotations

import base64
import enum
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from hcp.errors import ValidationError
from hcp.marketplace import models as m
from hcp.marketplace.amounts import MAX_TOKEN
from hcp.oracle.escalation import ProviderState
from hcp.oracle.models import OrcStanding

MAX_PAGE = 200


@dataclass(frozen=True)
class OfferSpec:
    gpu_model: str
    vcpu: int
    memory_gb: int
    storage_gb: int
    price_per_hour: int  # smallest token units per hour
    location: str
    available: bool = True

    def __post_init__(self) -> None:
        for name in ("gpu_model", "location"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip() or len(v) > 64:
                raise ValidationError(f"{name} must be a non-empty string of at most 64 characters")
        for name, hi in (("vcpu", 65535), ("memory_gb", 2**31 - 1), ("storage_gb", 2**31 - 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= hi:
                raise ValidationError(f"{name} must be an integer in 1..{hi}", **{name: v})
        p = self.price_per_hour
        if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 2**128:
            raise ValidationError("price_per_hour must be a positive integer (smallest units)",
                                  price_per_hour=str(p))


@dataclass(frozen=True)
class OfferView:
    id: str
    provider: str
    gpu_model: str
    vcpu: int
    memory_gb: int
    storage_gb: int
    price_per_hour: int
    location: str
    available: bool
    reputation: int
    created_at: datetime

    @classmethod
    def of(cls, row: m.Offer) -> OfferView:
        return cls(id=row.id, provider=row.provider, gpu_model=row.gpu_model, vcpu=row.vcpu,
                   memory_gb=row.memory_gb, storage_gb=row.storage_gb, price_per_hour=row.price_per_hour,
                   location=row.location, available=row.available, reputation=row.reputation,
                   created_at=row.created_at)


class SortOrder(str, enum.Enum):
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    REPUTATION_DESC = "reputation_desc"
    NEWEST = "newest"


@dataclass(frozen=True)
class SearchQuery:
    gpu_model: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    min_reputation: int | None = None
    location: str | None = None
    available_only: bool = True
    sort: SortOrder = SortOrder.PRICE_ASC
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValidationError(f"limit must be in 1..{MAX_PAGE}", limit=self.limit)
        for name in ("min_price", "max_price"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValidationError(f"{name} must be a non-negative integer")
        if self.min_reputation is not None and not 0 <= self.min_reputation <= 1000:
            raise ValidationError("min_reputation must be in 0..1000")


@dataclass(frozen=True)
class Page:
    items: list[OfferView]
    next_cursor: str | None


def _sort_column(sort: SortOrder) -> Any:
    return {SortOrder.PRICE_ASC: m.Offer.price_per_hour, SortOrder.PRICE_DESC: m.Offer.price_per_hour,
            SortOrder.REPUTATION_DESC: m.Offer.reputation, SortOrder.NEWEST: m.Offer.created_at}[sort]


def _cursor_value(sort: SortOrder, row: m.Offer) -> Any:
    if sort in (SortOrder.PRICE_ASC, SortOrder.PRICE_DESC):
        return str(row.price_per_hour)
    if sort is SortOrder.REPUTATION_DESC:
        return row.reputation
    return row.created_at.isoformat()


def _decode_value(sort: SortOrder, raw: Any) -> Any:
    """A cursor comes back from the client: every part is checked as if it were new input."""
    if sort in (SortOrder.PRICE_ASC, SortOrder.PRICE_DESC):
        if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,78}", raw) or int(raw) > MAX_TOKEN:
            raise ValueError("bad price")
        return int(raw)
    if sort is SortOrder.REPUTATION_DESC:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 1000:
            raise ValueError("bad reputation")
        return raw
    if not isinstance(raw, str) or len(raw) > 40:
        raise ValueError("bad time")
    at = datetime.fromisoformat(raw)
    if at.tzinfo is None:
        raise ValueError("bad time")
    return at.astimezone(UTC)


def encode_cursor(sort: SortOrder, row: m.Offer) -> str:
    raw = json.dumps([sort.value, _cursor_value(sort, row), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: SortOrder, cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_name, value, offer_id = json.loads(raw)
        if sort_name != sort.value:
            raise ValueError("cursor of another sort order")
        if not isinstance(offer_id, str) or not re.fullmatch(r"[0-9a-fA-F-]{1,36}", offer_id):
            raise ValueError("bad offer id")
        return _decode_value(sort, value), offer_id
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        raise ValidationError("invalid page cursor: pass a `next_cursor` from a previous page",
                              cursor=cursor[:80]) from exc


def not_offerable_providers() -> Select[tuple[str]]:
    """Providers the oracle's validators hold SUSPECT or DOWN (hcp.oracle.escalation): they
    are not offered to new renters until a run of clean checks makes them HEALTHY again."""
    return select(OrcStanding.provider_id).where(OrcStanding.state != ProviderState.HEALTHY.value)


def provider_offerable(s: Session, provider: str) -> bool:
    return s.scalar(not_offerable_providers().where(OrcStanding.provider_id == provider)) is None


def build_query(q: SearchQuery) -> Select[tuple[m.Offer]]:
    stmt = select(m.Offer)
    if q.available_only:
        stmt = stmt.where(m.Offer.available.is_(True),
                          m.Offer.provider.not_in(not_offerable_providers()))
    if q.gpu_model:
        stmt = stmt.where(m.Offer.gpu_model == q.gpu_model)
    if q.min_price is not None:
        stmt = stmt.where(m.Offer.price_per_hour >= q.min_price)
    if q.max_price is not None:
        stmt = stmt.where(m.Offer.price_per_hour <= q.max_price)
    if q.min_reputation is not None:
        stmt = stmt.where(m.Offer.reputation >= q.min_reputation)
    if q.location:
        stmt = stmt.where(m.Offer.location == q.location)
    col = _sort_column(q.sort)
    ascending = q.sort is SortOrder.PRICE_ASC
    if q.cursor:
        value, last_id = decode_cursor(q.sort, q.cursor)
        if ascending:
            stmt = stmt.where(or_(col > value, and_(col == value, m.Offer.id > last_id)))
        else:
            stmt = stmt.where(or_(col < value, and_(col == value, m.Offer.id < last_id)))
    order = (col.asc(), m.Offer.id.asc()) if ascending else (col.desc(), m.Offer.id.desc())
    return stmt.order_by(*order).limit(q.limit + 1)


def search(s: Session, q: SearchQuery) -> Page:
    rows = list(s.scalars(build_query(q)))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = encode_cursor(q.sort, rows[-1]) if more and rows else None
    return Page(items=[OfferView.of(r) for r in rows], next_cursor=cursor)
