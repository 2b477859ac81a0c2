"""How many of the node's peers answer. The embedded node's peers are the trustless gateways
it fetches missing blocks from (``HCP_IMAGES__PEERS``): a peer counts when it answers a HEAD of
the empty identity CID with anything but a server error within the timeout (a 404 is a live
gateway without that block)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

log = logging.getLogger(__name__)

EMPTY_IDENTITY_CID = "bafkqaaa"


def reachable_peers(peers: Sequence[str], client: httpx.Client) -> int:
    answered = 0
    for peer in peers:
        try:
            r = client.head(f"{peer.rstrip('/')}/ipfs/{EMPTY_IDENTITY_CID}",
                            params={"format": "raw"})
        except httpx.HTTPError as exc:
            log.debug("image peer %s did not answer: %s", peer, type(exc).__name__)
            continue
        if r.status_code < 500:
            answered += 1
    return answered
