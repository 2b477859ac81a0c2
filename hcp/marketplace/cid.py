"""Container image references: IPFS content identifiers, one canonical string per CID."""

from __future__ import annotations

from hcp.images.cids import normalize


def validate_cid(text: str) -> str:
    """The CID in its one canonical string: CIDv0 in base58btc (``Qm...``), CIDv1 in lowercase
    base32 (``b...``), whichever multibase the caller wrote it in; ``InvalidCidError`` (422)
    for anything that is not a CID."""
    return normalize(text)
