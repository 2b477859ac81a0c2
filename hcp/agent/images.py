"""``ImagePort`` over ``hcp.images``: a job's image by CID, every block verified, in the Engine.

The agent's own block store holds the image for the job (a lease). Missing blocks come from
the configured peers' trustless gateways, each hashed against its CID before it is kept; a
peer that serves a wrong block is dropped and, when no honest peer is left, the pull fails as
``image_tampered``. ``docker load`` reads the rebuilt archive, whose blobs are checked against
their digests on the way. An image the Engine already has under the config's digest (its image
ID, which covers every layer's diff_id) is not loaded again: that is the cached path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import docker.errors

from hcp.agent.messages import PulledImage
from hcp.errors import (
    BlockNotFoundError,
    HcpError,
    ImageBackendError,
    InvalidImageError,
    PeerFetchError,
    TamperedBlockError,
    TamperedImageError,
)
from hcp.images.cids import parse_cid
from hcp.images.docker import read_layout
from hcp.images.fetcher import FetchReport, GatewayFetcher
from hcp.images.service import ImageService, fetch_into

log = logging.getLogger(__name__)


class _WatchedFetcher(GatewayFetcher):
    """A fetcher that remembers the report of its current fetch (the bad peers it dropped),
    so a failed fetch can say the image was tampered with rather than just unavailable."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.reports: dict[str, FetchReport] = {}  # by DAG root, while a fetch of it runs

    def fetch_block(self, cid, report: FetchReport, start: int = 0) -> bytes:  # type: ignore[no-untyped-def]
        self.reports[str(report.root)] = report
        return super().fetch_block(cid, report, start)

    def bad_peers(self, root: str) -> list[str]:
        report = self.reports.pop(root, None)
        return list(report.bad_peers) if report else []


def peer_fetcher(peers: list[str], timeout: float, parallelism: int) -> GatewayFetcher | None:
    return _WatchedFetcher(peers, timeout, parallelism) if peers else None


class StoreImages:
    def __init__(self, service: ImageService, client: Any, fetcher: GatewayFetcher | None = None) -> None:
        self.service = service
        self.client = client  # docker.DockerClient
        self.fetcher = fetcher
        self._lock = threading.Lock()  # one docker load at a time: loads of one image race

    def repair(self, cid: str, job_id: str) -> int:
        """Fetch every block of ``cid`` the store lacks from the peers (each verified against
        its hash), held for ``job_id``: after a failed possession check. Blocks fetched."""
        if self.fetcher is None:
            return 0
        return fetch_into(self.service.store, parse_cid(cid), self.fetcher, pin=False,
                          job_id=job_id).fetched

    def ensure(self, cid: str, job_id: str) -> PulledImage:
        root = parse_cid(cid)
        fetched = 0
        try:
            report = self.service.pull(str(root), self.fetcher, pin=False, job_id=job_id)
            fetched = report.fetched if report else 0
            _manifest, config = read_layout(root, self.service.store.get_block)
        except TamperedBlockError as exc:
            raise TamperedImageError(f"image {root}: {exc.detail}", cid=str(root)) from exc
        except (PeerFetchError, BlockNotFoundError) as exc:
            bad = self.fetcher.bad_peers(str(root)) if isinstance(self.fetcher, _WatchedFetcher) else []
            if bad:
                # Peers are named by count only: a renter-visible reason names no host.
                raise TamperedImageError(
                    f"image {root}: {len(bad)} peer(s) served blocks that do not match the "
                    "image's CID (refused); no honest peer had them", cid=str(root)) from exc
            raise
        finally:
            if isinstance(self.fetcher, _WatchedFetcher):
                self.fetcher.reports.pop(str(root), None)
        image_id = str(_manifest["config"]["digest"])
        volumes = tuple(sorted(((config.get("config") or {}).get("Volumes") or {}).keys()))
        with self._lock:
            if self._has(image_id):
                return PulledImage(str(root), image_id, True, fetched, volumes)
            self._load(str(root), image_id)
        return PulledImage(str(root), image_id, False, fetched, volumes)

    def release(self, job_id: str) -> None:
        self.service.store.release(job_id)

    def _has(self, image_id: str) -> bool:
        try:
            self.client.images.get(image_id)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as exc:
            raise ImageBackendError(f"Docker Engine failed: {type(exc).__name__}") from exc

    def _load(self, cid: str, image_id: str) -> None:
        failure: list[HcpError] = []

        def watched() -> Iterator[bytes]:
            # An error inside the archive stream reaches docker-py as a broken upload: keep it.
            try:
                yield from self.service.archive(cid)
            except HcpError as exc:
                failure.append(exc)
                raise

        try:
            for line in self.client.api.load_image(watched()):
                if isinstance(line, dict) and line.get("error"):
                    raise InvalidImageError(f"docker load refused image {cid}: {line['error']}"[:900],
                                            cid=cid)
        except HcpError:
            raise
        except Exception as exc:
            if failure:
                raise _verified(failure[0], cid) from exc
            raise ImageBackendError(f"docker load of image {cid} failed: {type(exc).__name__}") from exc
        if failure:
            raise _verified(failure[0], cid)
        if not self._has(image_id):
            raise InvalidImageError(f"image {cid} did not load as {image_id}", cid=cid)
        log.info("loaded image %s as %s", cid, image_id[:19])


def _verified(exc: HcpError, cid: str) -> HcpError:
    if isinstance(exc, TamperedBlockError):
        return TamperedImageError(f"image {cid}: {exc.detail}", cid=cid)
    if isinstance(exc, InvalidImageError) and "digest" in exc.detail:
        return TamperedImageError(f"image {cid}: {exc.detail}", cid=cid)
    return exc
