"""Image metadata in SQL: name, tags, size, layers, uploader, and how much jobs use it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from hcp.clock import Clock, SystemClock
from hcp.errors import ImageNotFoundError
from hcp.images.models import ImgImage


@dataclass(frozen=True)
class ImageInfo:
    cid: str
    name: str
    tags: tuple[str, ...]
    size: int
    layers: tuple[dict[str, Any], ...]
    config_digest: str
    uploader: str
    created_at: datetime
    uses: int
    last_used: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "name": self.name, "tags": list(self.tags), "size": self.size,
                "layers": list(self.layers), "config_digest": self.config_digest,
                "uploader": self.uploader, "created_at": self.created_at.isoformat(),
                "uses": self.uses,
                "last_used": self.last_used.isoformat() if self.last_used else None}


def _info(row: ImgImage) -> ImageInfo:
    return ImageInfo(row.cid, row.name, tuple(row.tags), row.size, tuple(row.layers),
                     row.config_digest, row.uploader, row.created_at, row.uses, row.last_used)


class ImageCatalog:
    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()

    def record(self, cid: str, name: str, tags: list[str], size: int, layers: list[dict[str, Any]],
               config_digest: str, uploader: str) -> ImageInfo:
        """Record (or update the tags of) the image at ``cid``; the first uploader stays."""
        from sqlalchemy.orm import Session

        with Session(self.engine) as s, s.begin():
            row = s.get(ImgImage, cid)
            if row is None:
                row = ImgImage(cid=cid, name=name, tags=sorted(set(tags)), size=size, layers=layers,
                               config_digest=config_digest, uploader=uploader,
                               created_at=self.clock.now(), uses=0)
                s.add(row)
            else:
                row.tags = sorted(set(row.tags) | set(tags))
            s.flush()
            return _info(row)

    def get(self, cid: str) -> ImageInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(ImgImage).where(ImgImage.cid == cid)).first()
        if row is None:
            raise ImageNotFoundError(f"no image {cid}", cid=cid)
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            return _info(s.get(ImgImage, cid))  # type: ignore[arg-type]

    def list(self, name: str | None = None, uploader: str | None = None, limit: int = 50,
             offset: int = 0) -> list[ImageInfo]:
        """Most used first (then newest): the marketplace's popular images lead."""
        from sqlalchemy.orm import Session

        q = select(ImgImage)
        if name:
            q = q.where(ImgImage.name == name)
        if uploader:
            q = q.where(ImgImage.uploader == uploader)
        q = q.order_by(ImgImage.uses.desc(), ImgImage.created_at.desc(), ImgImage.cid)
        with Session(self.engine) as s:
            return [_info(r) for r in s.scalars(q.limit(limit).offset(offset))]

    def set_usage(self, cid: str, uses: int, last_used: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ImgImage).where(ImgImage.cid == cid)
                         .values(uses=uses, last_used=last_used))
