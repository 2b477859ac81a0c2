"""Import parameters: the knobs that decide which CID a file gets.

Kubo's defaults move (its ``unixfs-v1-2025`` profile uses 1 MiB chunks, 1024 links per node and
CIDv1), so the parameters a CID was made with are recorded beside it: the same bytes imported
with other parameters get another CID, and nobody can tell which without them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hcp.errors import ValidationError

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174
# A block is at most 2 MiB in the IPFS ecosystem (bitswap refuses larger); a chunk plus its
# framing must fit, so chunks stop at 1 MiB as Kubo's own limit does.
MAX_CHUNK_SIZE = 1024 * 1024
BLOCK_SIZE_LIMIT = 2 * 1024 * 1024


@dataclass(frozen=True)
class ImportParams:
    """How a file becomes a DAG; ``ipfs add``'s defaults unless told otherwise."""

    chunk_size: int = CHUNK_SIZE
    max_links: int = MAX_LINKS
    cid_version: int = 0
    raw_leaves: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValidationError(f"chunk_size must be 1..{MAX_CHUNK_SIZE}", chunk_size=self.chunk_size)
        if not 2 <= self.max_links <= 4096:
            raise ValidationError("max_links must be 2..4096", max_links=self.max_links)
        if self.cid_version not in (0, 1):
            raise ValidationError("cid_version must be 0 or 1", cid_version=self.cid_version)
        if self.cid_version == 0 and self.raw_leaves:
            # CIDv0 can only name dag-pb blocks; a raw leaf needs CIDv1 (Kubo refuses it too).
            raise ValidationError("raw leaves need cid_version=1")

    @classmethod
    def kubo(cls, cid_version: int = 0, raw_leaves: bool | None = None,
             chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> ImportParams:
        """As ``ipfs add [--cid-version=N] [--raw-leaves=B]``: CIDv1 implies raw leaves."""
        if raw_leaves is None:
            raw_leaves = cid_version == 1
        return cls(chunk_size=chunk_size, max_links=max_links, cid_version=cid_version,
                   raw_leaves=raw_leaves)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportParams:
        known = {k: data[k] for k in ("chunk_size", "max_links", "cid_version", "raw_leaves") if k in data}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def chunker(self) -> str:
        """Kubo's name for the chunker (``size-262144``)."""
        return f"size-{self.chunk_size}"


KUBO_DEFAULT = ImportParams()
KUBO_CIDV1 = ImportParams.kubo(cid_version=1)
# Kubo's newer profile (IPIP-499 "unixfs-v1-2025"): 1 MiB chunks, 1024 links, CIDv1, raw leaves.
KUBO_2025 = ImportParams(chunk_size=1024 * 1024, max_links=1024, cid_version=1, raw_leaves=True)
