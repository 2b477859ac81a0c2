"""What a provider must hold: the layer files of the images its running jobs use, read from
the marketplace's job records and the platform's image catalogue (no copy of any image:
the validators check proofs against the CID and the catalogue's layer sizes)."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hcp.errors import HcpError
from hcp.images.catalog import ImageCatalog
from hcp.marketplace import models as mk
from hcp.marketplace.jobs import JobStatus
from hcp.oracle.challenge import ImageTarget, targets_for_image

log = logging.getLogger(__name__)


class RunningJobTargets:
    def __init__(self, engine: Engine, catalog: ImageCatalog | None = None) -> None:
        self.engine = engine
        self.catalog = catalog or ImageCatalog(engine)

    def targets(self, provider_id: str) -> list[ImageTarget]:
        q = (select(mk.Job.image_cid).distinct()
             .where(mk.Job.provider == provider_id, mk.Job.status == JobStatus.RUNNING.value))
        with Session(self.engine) as s:
            cids = sorted(s.scalars(q))
        out: list[ImageTarget] = []
        for cid in cids:
            try:
                out.extend(targets_for_image(cid, self.catalog.get(cid).layers))
            except HcpError as exc:  # not an image hcp stored: nothing to challenge in it
                log.info("image %s of %s is not challengeable: %s", cid, provider_id, exc.code)
        return out
