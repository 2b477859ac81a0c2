"""The one interface of hcp's block stores, and the values it answers with."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

from hcp.images.cids import Cid
from hcp.images.params import ImportParams

Source = BinaryIO | Iterable[bytes]


@dataclass(frozen=True)
class AddResult:
    cid: Cid
    size: int  # file bytes (0 for a directory)
    tsize: int  # cumulative DAG size, as Kubo reports it
    blocks: int
    params: ImportParams
    pinned: bool


@dataclass(frozen=True)
class PinInfo:
    cid: Cid
    pinned_at: datetime | None
    pinned_by: str | None


@dataclass(frozen=True)
class RepoStat:
    used_bytes: int
    cap_bytes: int
    blocks: int
    pins: int
    leases: int


@dataclass(frozen=True)
class GcReport:
    removed_blocks: int
    freed_bytes: int
    removed: tuple[Cid, ...] = ()


@runtime_checkable
class BlockStore(Protocol):
    """What every backend does. Blocks are addressed by CID and verified on the way in and
    out; a pinned or leased DAG is never collected; the cap is never exceeded."""

    cap_bytes: int

    # blocks
    def put_block(self, data: bytes, codec: int = ..., cid_version: int = ...) -> Cid: ...
    def put_blocks(self, blocks: Iterable[tuple[Cid, bytes]], root: Cid | None = None,
                   pin: bool = False, pinned_by: str | None = None) -> int: ...
    def get_block(self, cid: Cid) -> bytes: ...
    def has_block(self, cid: Cid) -> bool: ...

    # files and directories
    def add(self, source: Source, params: ImportParams | None = None, pin: bool = True,
            pinned_by: str | None = None) -> AddResult: ...
    def add_tree(self, files: Mapping[str, Source], params: ImportParams | None = None,
                 pin: bool = True, pinned_by: str | None = None) -> AddResult: ...
    def cat(self, cid: Cid, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...

    # holds
    def pin(self, cid: Cid, pinned_by: str | None = None) -> None: ...
    def unpin(self, cid: Cid) -> bool: ...
    def pins(self) -> list[PinInfo]: ...
    def is_pinned(self, cid: Cid) -> bool: ...
    def lease(self, job_id: str, cid: Cid) -> None: ...
    def release(self, job_id: str) -> int: ...

    # space
    def gc(self) -> GcReport: ...
    def stat(self) -> RepoStat: ...
