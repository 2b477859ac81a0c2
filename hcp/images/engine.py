"""Docker Engine at the edges of the image store: ``docker save`` into the store (push) and a
rebuilt archive into ``docker load`` (pull), streamed both ways through the docker SDK."""

from __future__ import annotations

import logging
from typing import Any

from hcp.errors import ImageBackendError, InvalidImageError
from hcp.images.catalog import ImageInfo
from hcp.images.docker import IterReader, StoredImage
from hcp.images.service import ImageService

log = logging.getLogger(__name__)


def docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        raise ImageBackendError(f"Docker Engine is not reachable: {type(exc).__name__}") from exc
    return client


def push_from_engine(service: ImageService, image: str, uploader: str, client: Any = None,
                     tags: list[str] | None = None) -> tuple[StoredImage, ImageInfo]:
    """Store a local Engine image by CID: its blobs, not the archive."""
    import docker.errors

    client = client or docker_client()
    try:
        img = client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise InvalidImageError(f"no image {image!r} in the local Docker Engine", image=image) from exc
    stream = IterReader(iter(img.save(named=True)))
    repo_tags = [t for t in img.tags if t == image or t.split(":")[0] == image.split(":")[0]]
    return service.push_archive(stream, uploader, tags=sorted(set(repo_tags) | set(tags or [])))


def load_into_engine(service: ImageService, cid: str, client: Any = None,
                     tags: list[str] | None = None) -> str:
    """``docker load`` the image at ``cid`` (blocks must be local); answers the image ID."""
    client = client or docker_client()
    out = client.api.load_image(service.archive(cid, tags))
    image_id = None
    for line in out:
        if isinstance(line, dict):
            if line.get("error"):
                raise ImageBackendError(f"docker load refused the image: {line['error']}")
            stream = str(line.get("stream", ""))
            if "Loaded image" in stream:
                image_id = stream.rsplit(" ", 1)[-1].strip()
    from hcp.images.cids import parse_cid
    from hcp.images.docker import read_layout

    # The config's digest is the image ID the Engine gives the loaded image.
    return str(read_layout(parse_cid(cid), service.store.get_block)[0]["config"]["digest"]) \
        or image_id or ""
