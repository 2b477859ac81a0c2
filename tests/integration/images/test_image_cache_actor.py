"""The platform's image cache actor pins the image the marketplace's renters run most, and
lists it first in the catalog, from the job records in the shared store."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import ray
from sqlalchemy import insert

from actors.images import launch_image_cache
from hcp.config import Settings
from hcp.images.catalog import ImageCatalog
from hcp.images.service import ImageService
from hcp.images.settings import ImagesSettings
from hcp.images.store.embedded import EmbeddedStore
from hcp.marketplace.models import Job, Offer
from hcp.store import engine_for, migrate
from tests.unit.images.archives import classic_archive, image_parts


def test_the_actor_pins_the_most_run_image(ray_session: None, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'hcp.db'}",
                        ray_namespace="hcp-test-image-cache", images=ImagesSettings(cache_top_n=1))
    engine = engine_for(settings.resolved_database_url)
    migrate(engine)  # the platform's launch does this first
    store = EmbeddedStore.from_settings(settings, engine)  # the API replica's view of the node
    svc = ImageService(store, ImageCatalog(engine))
    cids = []
    for name in ("rare", "hot"):
        config, layers = image_parts(name)
        img, _ = svc.push_archive(io.BytesIO(classic_archive(config, layers, [f"{name}:1"])), "u")
        store.unpin(img.cid)
        cids.append(str(img.cid))
    rare, hot = cids
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(Offer).values(id="o", provider="p", gpu_model="H100", vcpu=1,
                                          memory_gb=1, storage_gb=1, price_per_hour=1, location="x",
                                          available=True, reputation=500, created_at=now))
        for i, cid in enumerate([hot, hot, rare]):
            conn.execute(insert(Job).values(id=f"j{i}", offer_id="o", renter="r", provider="p",
                                            image_cid=cid, price_per_hour=1, estimated_seconds=1,
                                            max_cost=1, status="COMPLETED", created_at=now))
    handle = launch_image_cache(settings)
    try:
        period = ray.get(handle.step.remote(True), timeout=60)
        assert [(d.action.value, d.cid, outcome) for d, outcome in period.outcomes] == [
            ("pin", hot, "done")]
        assert {str(p.cid) for p in store.pins()} == {hot}
        assert [i.cid for i in svc.list()] == [hot, rare]  # most run first
        assert ray.get(handle.status.remote()).errors == 0
    finally:
        ray.kill(handle, no_restart=True)
