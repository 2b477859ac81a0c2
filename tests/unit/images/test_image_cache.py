"""The node's image cache over the real block store, catalog and marketplace job records:
the most-run images get pinned and lead the catalog's list; what it pinned and nobody ran for
a month is let go after a restart too; the uploader's pin of an image no job ran stays."""

from __future__ import annotations

import io

from sqlalchemy import insert

from hcp.images.cache import CACHE_PINNER, ImageCache
from hcp.images.catalog import ImageCatalog
from hcp.images.cids import parse_cid
from hcp.images.service import ImageService
from hcp.images.settings import ImagesSettings
from hcp.images.store.embedded import EmbeddedStore
from hcp.images.usage import MarketplaceJobUsage
from hcp.marketplace.models import Job, Offer
from tests.unit.images.archives import classic_archive, image_parts
from tests.unit.images.conftest import ManualClock


def _jobs(store: EmbeddedStore, clock: ManualClock, runs: dict[str, int], status: str = "COMPLETED",
          start: int = 0) -> None:
    with store.engine.begin() as conn:
        if start == 0:
            conn.execute(insert(Offer).values(
                id="o", provider="p", gpu_model="H100", vcpu=1, memory_gb=1, storage_gb=1,
                price_per_hour=1, location="x", available=True, reputation=500, created_at=clock.now()))
        n = start
        for cid, count in runs.items():
            for _ in range(count):
                conn.execute(insert(Job).values(
                    id=f"j{n}", offer_id="o", renter="r", provider="p", image_cid=cid,
                    price_per_hour=1, estimated_seconds=1, max_cost=1, status=status,
                    created_at=clock.now()))
                n += 1


def test_popular_images_are_pinned_and_listed_first_then_let_go(store: EmbeddedStore,
                                                                 clock: ManualClock) -> None:
    catalog = ImageCatalog(store.engine, clock)
    svc = ImageService(store, catalog)
    cids = []
    for name in ("a", "b", "c"):
        config, layers = image_parts(name)
        img, _ = svc.push_archive(io.BytesIO(classic_archive(config, layers, [f"{name}:1"])), "alice")
        cids.append(str(img.cid))
        store.unpin(img.cid)  # as if the upload's pin had been dropped: only the cache holds it
    a, b, c = cids
    store.pin(parse_cid(c), pinned_by="alice")  # the uploader keeps c herself
    settings = ImagesSettings(cache_top_n=1, cache_interval_seconds=300, cache_unused_days=30)
    _jobs(store, clock, {b: 3, a: 1})
    _jobs(store, clock, {c: 5}, status="CANCELLED", start=10)  # never ran: not popular
    cache = ImageCache(store, catalog, MarketplaceJobUsage(store.engine), clock, settings)

    period = cache.step()
    assert period is not None and [(d.action.value, d.cid, o) for d, o in period.outcomes] == [
        ("pin", b, "done")]
    assert {p.pinned_by for p in store.pins() if str(p.cid) == b} == {CACHE_PINNER}
    assert [i.cid for i in catalog.list()][:2] == [b, a]  # the most-run image leads
    assert catalog.get(b).uses == 3 and period.usage_updated == 2
    assert cache.step() is None  # not due again for five minutes

    # A month and more without a run; a restarted node knows the pin of b is its own.
    clock.advance(days=31)
    restarted = ImageCache(store, catalog, MarketplaceJobUsage(store.engine), clock,
                           settings.model_copy(update={"cache_top_n": 0}))
    period = restarted.step()
    assert period is not None
    assert [(d.action.value, d.cid) for d, _ in period.outcomes] == [("unpin", b)]
    assert not store.is_pinned(parse_cid(b)) and store.is_pinned(parse_cid(c))


def test_a_provider_node_fetches_and_pins_the_platforms_most_run_images(
        store: EmbeddedStore, clock: ManualClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The agent's cache: popularity from the platform's catalog over HTTP (kept in step with
    the job records by the platform node), blocks fetched from the platform's gateway into the
    provider's own store, every block verified, pinned as the cache's own."""
    from hcp.agent.build import agent_cache
    from hcp.agent.http_ports import HttpImageUsage
    from hcp.agent.images import StoreImages
    from hcp.auth.tokens import Role
    from hcp.client.transport import SyncTransport
    from hcp.config import Settings
    from hcp.images.fetcher import GatewayFetcher
    from tests.unit.images.conftest import make_store
    from tests.unit.images.http_support import bearer, node

    catalog = ImageCatalog(store.engine, clock)
    svc = ImageService(store, catalog)
    cids = []
    for name in ("a", "b"):
        config, layers = image_parts(name)
        img, _ = svc.push_archive(io.BytesIO(classic_archive(config, layers, [f"{name}:1"])), "alice")
        cids.append(str(img.cid))
    a, b = cids
    _jobs(store, clock, {b: 2, a: 1})
    ImageCache(store, catalog, MarketplaceJobUsage(store.engine), clock, ImagesSettings()).step()

    client, tokens = node(tmp_path / "platform", store)
    token = tokens.issue("prov-1", Role.PROVIDER)
    transport = SyncTransport(client, token)
    usage = HttpImageUsage(transport)
    assert [(u.cid, u.uses) for u in sorted(usage.image_usage(), key=lambda u: -u.uses)] == [
        (b, 2), (a, 1)]

    mine = make_store(tmp_path / "provider", clock=clock)
    fetcher = GatewayFetcher([str(client.base_url)], client=client,
                             headers=bearer(tokens, Role.PROVIDER, "prov-1"))
    images = StoreImages(ImageService(mine, ImageCatalog(mine.engine, clock)), None, fetcher)
    settings = Settings(home=tmp_path, images={"cache_top_n": 1})
    cache = agent_cache(settings, images, usage)
    cache.policy.clock = clock
    assert not mine.has_block(parse_cid(b))
    period = cache.step(force=True)
    assert period is not None and [(d.action.value, d.cid, o) for d, o in period.outcomes] == [
        ("pin", b, "done")]
    assert {p.pinned_by for p in mine.pins()} == {CACHE_PINNER}
    assert mine.is_pinned(parse_cid(b)) and not mine.is_pinned(parse_cid(a))
    assert b"".join(ImageService(mine, ImageCatalog(mine.engine)).archive(b, [])) == \
        b"".join(svc.archive(b, []))  # every block of b is here now
