"""Fetch one DAG's blocks from several peers' trustless gateways at once.

Blocks are requested as ``GET /ipfs/{cid}`` with ``Accept: application/vnd.ipld.raw`` and spread
over the healthy peers; each answer is hashed against its CID before it is stored or its links
are followed. A peer that serves a wrong block is dropped for the rest of the fetch (and
named in the report); one that fails or times out only loses that request, which goes to the
next peer. Blocks already in the store are not fetched again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import httpx

from hcp.errors import PeerFetchError, TamperedBlockError, ValidationError
from hcp.images.cids import DAG_PB, RAW, Cid, verify_block
from hcp.images.dagpb import decode_node
from hcp.images.params import BLOCK_SIZE_LIMIT

log = logging.getLogger(__name__)
RAW_MEDIA_TYPE = "application/vnd.ipld.raw"


@dataclass
class FetchReport:
    root: Cid
    fetched: int = 0
    fetched_bytes: int = 0
    local: int = 0
    by_peer: dict[str, int] = field(default_factory=dict)
    bad_peers: list[str] = field(default_factory=list)
    failures: int = 0


class GatewayFetcher:
    def __init__(self, peers: list[str], timeout: float = 30.0, parallelism: int = 8,
                 client: httpx.Client | None = None,
                 headers: dict[str, str] | None = None) -> None:
        if not peers:
            raise ValidationError("no peers to fetch from")
        self.peers = [p.rstrip("/") for p in peers]
        self.parallelism = parallelism
        self._client = client or httpx.Client(timeout=timeout, limits=httpx.Limits(
            max_connections=parallelism * 2, max_keepalive_connections=parallelism * 2))
        self._headers = {"Accept": RAW_MEDIA_TYPE, **(headers or {})}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def _get_from(self, peer: str, cid: Cid) -> bytes:
        with self._client.stream("GET", f"{peer}/ipfs/{cid}", params={"format": "raw"},
                                 headers=self._headers) as r:
            if r.status_code != 200:
                raise httpx.HTTPStatusError(f"{r.status_code}", request=r.request, response=r)
            buf = bytearray()
            for piece in r.iter_bytes():
                buf += piece
                if len(buf) > BLOCK_SIZE_LIMIT:
                    raise TamperedBlockError(f"peer sent more than 2 MiB for {cid}", cid=str(cid))
        return bytes(buf)

    def fetch_block(self, cid: Cid, report: FetchReport, start: int = 0) -> bytes:
        """One verified block, trying the healthy peers from ``start`` round."""
        tried = 0
        n = len(self.peers)
        for i in range(n):
            peer = self.peers[(start + i) % n]
            with self._lock:
                if peer in report.bad_peers:
                    continue
            tried += 1
            try:
                block = self._get_from(peer, cid)
                verify_block(cid, block)
            except TamperedBlockError:
                log.warning("peer %s served a wrong block for %s: dropped", peer, cid)
                with self._lock:
                    if peer not in report.bad_peers:
                        report.bad_peers.append(peer)
                continue
            except (httpx.HTTPError, OSError) as exc:
                log.info("peer %s could not serve %s: %s", peer, cid, exc)
                with self._lock:
                    report.failures += 1
                continue
            with self._lock:
                report.fetched += 1
                report.fetched_bytes += len(block)
                report.by_peer[peer] = report.by_peer.get(peer, 0) + 1
            return block
        raise PeerFetchError(f"no peer served block {cid} ({tried} tried)", cid=str(cid))

    def fetch_dag(self, root: Cid, session, have: Callable[[Cid], bytes | None]) -> FetchReport:  # type: ignore[no-untyped-def]
        """Every block of ``root``'s DAG into ``session`` (``put``/``protect_existing``);
        ``have(cid)`` answers a local block's bytes or None."""
        report = FetchReport(root)
        seen: set[bytes] = set()
        counter = 0

        def links(cid: Cid, block: bytes) -> list[Cid]:
            if cid.codec == DAG_PB:
                return [link.cid for link in decode_node(block).links]
            if cid.codec != RAW:
                raise ValidationError(f"{cid}: only dag-pb and raw DAGs are fetched", cid=str(cid))
            return []

        def one(cid: Cid, turn: int) -> list[Cid]:
            local = session.protect_existing(cid) and have(cid)
            if local:
                verify_block(cid, local)
                with self._lock:
                    report.local += 1
                return links(cid, local)
            block = self.fetch_block(cid, report, turn)
            session.put(cid, block)
            return links(cid, block)

        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="hcp-fetch") as pool:
            pending: set[Future] = set()
            queue = [root]
            while queue or pending:
                while queue and len(pending) < self.parallelism * 2:
                    cid = queue.pop()
                    if cid.multihash in seen:
                        continue
                    seen.add(cid.multihash)
                    pending.add(pool.submit(one, cid, counter))
                    counter += 1
                if not pending:
                    continue
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    queue.extend(reversed(fut.result()))
        return report
