"""Where image popularity comes from: the marketplace's job records, or the image catalog."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, func, select

from hcp.errors import InvalidCidError
from hcp.images.cids import normalize
from hcp.images.policy import ImageUsage


class MarketplaceJobUsage:
    """Jobs per image CID and the latest start, from ``mk_jobs`` (a CID stored in another
    spelling before canonical strings counts as the same image)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def image_usage(self) -> Iterable[ImageUsage]:
        from hcp.marketplace.models import Job

        # A cancelled job never ran its image: it makes no image popular.
        q = (select(Job.image_cid, func.count(), func.max(func.coalesce(Job.started_at, Job.created_at)))
             .where(Job.status != "CANCELLED").group_by(Job.image_cid))
        merged: dict[str, ImageUsage] = {}
        with self.engine.connect() as conn:
            for cid, n, last in conn.execute(q):
                try:
                    key = normalize(cid)
                except InvalidCidError:
                    continue  # a record from before CIDs were validated: no image to count
                prev = merged.get(key)
                if prev is not None:
                    n += prev.uses
                    last = max(x for x in (last, prev.last_used) if x is not None)
                merged[key] = ImageUsage(key, int(n), last)
        return merged.values()


class CatalogUsage:
    """The catalog's own counters (``uses``/``last_used``), for nodes without a job table."""

    def __init__(self, catalog) -> None:  # type: ignore[no-untyped-def]
        self.catalog = catalog

    def image_usage(self) -> Iterable[ImageUsage]:
        return [ImageUsage(i.cid, i.uses, i.last_used) for i in self.catalog.list(limit=10_000)]
