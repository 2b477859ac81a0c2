"""The image service a node runs: uploads of Docker archives into the block store, the
catalog beside it, pins, fetches from peers and rebuilt archives for ``docker load``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import BinaryIO

from hcp.errors import BlockNotFoundError, ImageNotFoundError, ValidationError
from hcp.images.catalog import ImageCatalog, ImageInfo
from hcp.images.cids import Cid, parse_cid
from hcp.images.docker import StoredImage, docker_archive, ingest_archive, read_layout
from hcp.images.fetcher import FetchReport, GatewayFetcher
from hcp.images.params import ImportParams
from hcp.images.store.embedded import EmbeddedStore

log = logging.getLogger(__name__)


def fetch_into(store: EmbeddedStore, root: Cid, fetcher: GatewayFetcher, *, pin: bool = True,
               pinned_by: str | None = None, job_id: str | None = None) -> FetchReport:
    """Fetch ``root``'s whole DAG from peers (verified) and hold it (pin, or a job lease)."""
    with store.session() as s:
        report = fetcher.fetch_dag(root, s, have=lambda c: store.files.read(c.key))
        s.commit(root, pin=pin, pinned_by=pinned_by, job_id=job_id, members=True)
    return report


def _name_of(tags: tuple[str, ...]) -> str:
    if not tags:
        return "unnamed"
    ref = tags[0]
    return ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref


class ImageService:
    def __init__(self, store: EmbeddedStore, catalog: ImageCatalog,
                 params: ImportParams | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.params = params or ImportParams()

    def push_archive(self, stream: BinaryIO, uploader: str, name: str | None = None,
                     tags: list[str] | None = None, pin: bool = True) -> tuple[StoredImage, ImageInfo]:
        """A ``docker save`` archive into the store as its blob directory, pinned, and recorded."""
        with self.store.session() as s:
            img = ingest_archive(stream, s, self.params)
            s.commit(img.cid, size=img.size, params=self.params, pin=pin, pinned_by=uploader,
                     members=img.keys)
        all_tags = sorted(set(img.repo_tags) | set(tags or []))
        info = self.catalog.record(str(img.cid), name or _name_of(tuple(all_tags)), all_tags,
                                   img.size, img.layer_dicts(), img.config_digest, uploader)
        log.info("image %s stored as %s (%d bytes, %d layers)", info.name, img.cid, img.size,
                 len(img.layers))
        return img, info

    def get(self, cid: str) -> ImageInfo:
        return self.catalog.get(str(parse_cid(cid)))

    def list(self, name: str | None = None, uploader: str | None = None, limit: int = 50,
             offset: int = 0) -> list[ImageInfo]:
        return self.catalog.list(name, uploader, limit, offset)

    def pull(self, cid: str, fetcher: GatewayFetcher | None = None, *, pin: bool = True,
             job_id: str | None = None, pinned_by: str | None = None) -> FetchReport | None:
        """Make the image's blocks local (fetching what is missing from peers) and hold them."""
        root = parse_cid(cid)
        try:
            if job_id is not None:
                self.store.lease(job_id, root)
            if pin:
                self.store.pin(root, pinned_by)
            read_layout(root, self.store.get_block)
            return None
        except BlockNotFoundError:
            if fetcher is None:
                raise
        report = fetch_into(self.store, root, fetcher, pin=pin, pinned_by=pinned_by, job_id=job_id)
        read_layout(root, self.store.get_block)
        return report

    def archive(self, cid: str, repo_tags: list[str] | None = None) -> Iterator[bytes]:
        root = parse_cid(cid)
        if repo_tags is None:
            try:
                repo_tags = list(self.catalog.get(str(root)).tags)
            except ImageNotFoundError:
                repo_tags = []
        for t in repo_tags:
            if not t or len(t) > 255 or any(c.isspace() for c in t):
                raise ValidationError(f"bad image tag {t!r}")
        return docker_archive(root, self.store.get_block, repo_tags)
