"""One DAG fetched from several peers' gateways at once; a peer serving a wrong block is
detected, skipped and named, and the fetch still completes from the honest peers."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hcp.images.fetcher import GatewayFetcher
from hcp.images.params import KUBO_CIDV1
from hcp.images.patterns import pattern_bytes
from hcp.images.service import fetch_into
from tests.integration.images.node_server import serve
from tests.unit.images.conftest import make_store
from tests.unit.images.http_support import node

DATA = pattern_bytes("fetch", 5 << 20)


def _liar() -> FastAPI:
    app = FastAPI()

    @app.get("/ipfs/{cid}")
    def wrong(cid: str, request: Request) -> Response:
        return Response(b"not the block you asked for", media_type="application/vnd.ipld.raw")

    return app


def test_fetch_from_three_peers_skipping_a_liar(tmp_path: Path) -> None:
    peers = []
    with ExitStack() as stack:
        root = None
        for i in range(2):
            s = make_store(tmp_path / f"peer{i}", cap=64 << 20)
            root = s.add([DATA], KUBO_CIDV1).cid
            client, _ = node(tmp_path / f"peer{i}", s)
            peers.append(stack.enter_context(serve(client.app)))
        liar = stack.enter_context(serve(_liar()))
        assert root is not None
        mine = make_store(tmp_path / "me", cap=64 << 20)
        fetcher = GatewayFetcher([liar, *peers], parallelism=6)
        report = fetch_into(mine, root, fetcher, job_id="job-7")
        fetcher.close()
    assert report.bad_peers == [liar] and liar not in report.by_peer
    assert set(report.by_peer) == set(peers)  # both honest peers served a share
    assert report.fetched == 21 and sum(report.by_peer.values()) == 21
    assert b"".join(mine.cat(root)) == DATA
    assert mine.leases() == [("job-7", root)]
    mine.gc()
    assert b"".join(mine.cat(root)) == DATA  # held by the job's lease
