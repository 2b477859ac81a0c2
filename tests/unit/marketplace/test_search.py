"""Offer search: every filter and sort order, walked page by page with keyset cursors, equals a
plain Python filter-and-sort of the same offers (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from hcp.auth.tokens import Principal, Role
from hcp.errors import ValidationError
from hcp.marketplace import models as m
from hcp.marketplace.escrow_backend import ONE_TOKEN
from hcp.marketplace.offers import OfferSpec, OfferView, SearchQuery, SortOrder
from hcp.marketplace.service import MarketplaceService
from tests.unit.marketplace.conftest import ManualClock

MODELS = ["A100", "H100", "RTX4090"]
LOCATIONS = ["eu", "us"]
# Prices straddle 2**64 and share values, so ties and big-number ordering are both exercised.
PRICES = st.sampled_from([1, 9, 10, 2**63, 2**64 + 5, 10 * ONE_TOKEN, 10 * ONE_TOKEN, 99 * ONE_TOKEN])

offer_st = st.tuples(st.sampled_from(MODELS), PRICES, st.sampled_from(LOCATIONS), st.booleans(),
                     st.integers(0, 3))
query_st = st.builds(
    SearchQuery,
    gpu_model=st.none() | st.sampled_from(MODELS),
    min_price=st.none() | PRICES,
    max_price=st.none() | PRICES,
    min_reputation=st.none() | st.sampled_from([0, 700, 900, 1000]),
    location=st.none() | st.sampled_from(LOCATIONS),
    available_only=st.booleans(),
    sort=st.sampled_from(list(SortOrder)),
    limit=st.integers(1, 4),
)


def _expected(offers: list[OfferView], q: SearchQuery) -> list[str]:
    rows = [o for o in offers
            if (not q.available_only or o.available)
            and (q.gpu_model is None or o.gpu_model == q.gpu_model)
            and (q.min_price is None or o.price_per_hour >= q.min_price)
            and (q.max_price is None or o.price_per_hour <= q.max_price)
            and (q.min_reputation is None or o.reputation >= q.min_reputation)
            and (q.location is None or o.location == q.location)]
    key = {SortOrder.PRICE_ASC: lambda o: (o.price_per_hour, o.id),
           SortOrder.PRICE_DESC: lambda o: (o.price_per_hour, o.id),
           SortOrder.REPUTATION_DESC: lambda o: (o.reputation, o.id),
           SortOrder.NEWEST: lambda o: (o.created_at, o.id)}[q.sort]
    return [o.id for o in sorted(rows, key=key, reverse=q.sort is not SortOrder.PRICE_ASC)]


def _walk(service: MarketplaceService, q: SearchQuery) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(100):
        page = service.search(SearchQuery(**{**q.__dict__, "cursor": cursor}))
        assert len(page.items) <= q.limit
        out += [o.id for o in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(offers=st.lists(offer_st, max_size=12), queries=st.lists(query_st, min_size=1, max_size=4))
def test_search_equals_a_python_scan(service: MarketplaceService, engine, clock: ManualClock,  # type: ignore[no-untyped-def]
                                     offers, queries) -> None:
    with engine.begin() as c:
        c.execute(delete(m.Offer))
        c.execute(delete(m.Reputation))
    for i in range(4):  # providers with different reputations
        service.penalize(Principal("root", Role.ADMIN), f"p{i}", 1 + 150 * i)
    made = []
    for model, price, loc, available, who in offers:
        clock.advance(1)
        made.append(service.register_offer(Principal(f"p{who}", Role.PROVIDER),
                                           OfferSpec(model, 4, 16, 100, price, loc, available)))
    for q in queries:
        assert _walk(service, q) == _expected(made, q)


def test_bad_cursor_and_limits(service: MarketplaceService) -> None:
    with pytest.raises(ValidationError):
        service.search(SearchQuery(cursor="garbage"))
    with pytest.raises(ValidationError):
        SearchQuery(limit=0)
    p = Principal("p", Role.PROVIDER)
    for _ in range(3):
        service.register_offer(p, OfferSpec("A100", 4, 16, 100, 5, "eu"))
    page = service.search(SearchQuery(limit=2, sort=SortOrder.NEWEST))
    with pytest.raises(ValidationError):  # a cursor belongs to its sort order
        service.search(SearchQuery(limit=2, sort=SortOrder.PRICE_ASC, cursor=page.next_cursor))
