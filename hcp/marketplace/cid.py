"""Container image references: IPFS content identifiers, validated with ``multiformats``."""

from __future__ import annotations

from multiformats import CID

from hcp.errors import InvalidCidError


def validate_cid(text: str) -> str:
    """The CID in its canonical string form (v0 stays base58btc, v1 base32)."""
    if not isinstance(text, str) or not text or len(text) > 128:
        raise InvalidCidError("an image CID is a non-empty string of at most 128 characters")
    try:
        cid = CID.decode(text.strip())
    except Exception as exc:  # multiformats raises KeyError/ValueError subclasses of many kinds
        raise InvalidCidError(f"not a valid CID: {exc}", cid=text) from exc
    return str(cid)
