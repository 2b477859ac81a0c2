"""Tables of the image store: blocks, the DAGs they belong to, pins, job leases, and image
metadata. The schema itself is owned by migration ``0009_images``.

``img_blocks.refs`` counts the holds (pins and job leases) whose DAG contains the block; GC and
eviction only ever delete a row whose ``refs`` is 0, in the same statement that checks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hcp.clock import utcnow
from hcp.store.models import Base, UtcDateTime

KEY = String(80)  # a multihash in hex (sha2-256: 68 characters)
CID_TEXT = String(128)
WHO = String(128)


class ImgBlock(Base):
    __tablename__ = "img_blocks"
    key: Mapped[str] = mapped_column(KEY, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    refs: Mapped[int] = mapped_column(Integer, default=0)
    last_used: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (Index("ix_img_blocks_evictable", "refs", "last_used"),)


class ImgDag(Base):
    """A root whose complete block list is known (imported, fetched or walked once)."""

    __tablename__ = "img_dags"
    root: Mapped[str] = mapped_column(CID_TEXT, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)  # file bytes (0 for a directory)
    tsize: Mapped[int] = mapped_column(BigInteger)  # every block, counted once per link
    stored_bytes: Mapped[int] = mapped_column(BigInteger)  # distinct blocks' bytes
    blocks: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ImgDagBlock(Base):
    __tablename__ = "img_dag_blocks"
    root: Mapped[str] = mapped_column(ForeignKey("img_dags.root", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(KEY, primary_key=True, index=True)


class ImgPin(Base):
    __tablename__ = "img_pins"
    root: Mapped[str] = mapped_column(ForeignKey("img_dags.root"), primary_key=True)
    pinned_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    pinned_by: Mapped[str | None] = mapped_column(WHO, nullable=True)


class ImgLease(Base):
    """A running job's hold on an image: its blocks cannot be collected until released."""

    __tablename__ = "img_leases"
    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    root: Mapped[str] = mapped_column(ForeignKey("img_dags.root"), primary_key=True)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    __table_args__ = (Index("ix_img_leases_root", "root"),)


class ImgImage(Base):
    """A Docker image stored as a UnixFS directory of its content-addressed blobs."""

    __tablename__ = "img_images"
    cid: Mapped[str] = mapped_column(CID_TEXT, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(BigInteger)
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    config_digest: Mapped[str] = mapped_column(String(80))
    uploader: Mapped[str] = mapped_column(WHO, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    uses: Mapped[int] = mapped_column(BigInteger, default=0)
    last_used: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    __table_args__ = (Index("ix_img_images_popularity", "uses", "cid"),)
