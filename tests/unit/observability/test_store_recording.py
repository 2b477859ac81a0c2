"""The image store's and chain's recording helpers, and the database-connections recorder on
the embedded default (tests/integration/postgres reads a real server's)."""

from __future__ import annotations

from pathlib import Path

import httpx

from hcp.images.patterns import pattern_bytes
from hcp.images.peers import reachable_peers
from hcp.images.store.base import RepoStat
from hcp.observability.sink import PrometheusSink
from hcp.observability.stores import DbConnections, record_chain, record_image_store
from hcp.store import connect
from tests.unit.images.conftest import make_store


def test_the_image_store_stat_becomes_its_gauges() -> None:
    sink = PrometheusSink()
    record_image_store(sink, RepoStat(used_bytes=5_000, cap_bytes=10_000, blocks=7, pins=2,
                                      leases=0), "embedded", 3)
    assert sink.value("hcp_image_store_size_bytes", backend="embedded") == 5_000
    assert sink.value("hcp_image_store_pins", backend="embedded") == 2
    assert sink.value("hcp_image_store_peers", backend="embedded") == 3


def test_a_peer_counts_when_its_gateway_answers_below_500() -> None:
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append((request.method, request.url.host, request.url.path))
        if request.url.host == "refused.invalid":
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "broken.invalid":
            return httpx.Response(502)
        return httpx.Response(404 if request.url.host == "empty.invalid" else 200)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    peers = ["http://live.invalid:8080/", "http://empty.invalid", "http://broken.invalid",
             "http://refused.invalid"]
    assert reachable_peers(peers, client) == 2  # a 404 is a live gateway without the block
    assert asked[0] == ("HEAD", "live.invalid", "/ipfs/bafkqaaa")
    assert reachable_peers([], client) == 0


def test_collections_and_evictions_are_counted_with_the_bytes_they_free(tmp_path: Path) -> None:
    store = make_store(tmp_path, cap=1_000_000)
    sink = PrometheusSink()
    store.sink = sink
    store.add([pattern_bytes("kept", 300_000)])
    store.add([pattern_bytes("loose", 300_000)], pin=False)
    report = store.gc()
    assert sink.value("hcp_image_store_gc_runs_total", backend="embedded") == 1
    assert (sink.value("hcp_image_store_gc_freed_bytes_total", backend="embedded")
            == report.freed_bytes > 0)
    store.add([pattern_bytes("loose2", 400_000)], pin=False)
    store.add([pattern_bytes("more", 400_000)])  # over the cap: the unpinned one is evicted
    assert sink.value("hcp_image_store_gc_runs_total", backend="embedded") == 2
    assert (sink.value("hcp_image_store_gc_freed_bytes_total", backend="embedded")
            > report.freed_bytes)
    store.gc()  # nothing left to free: a run, no bytes
    assert sink.value("hcp_image_store_gc_runs_total", backend="embedded") == 3
    store.engine.dispose()


def test_a_chain_node_that_does_not_answer_is_down_and_keeps_its_last_height() -> None:
    sink = PrometheusSink()
    record_chain(sink, 120, 100)
    assert sink.value("hcp_chain_node_up") == 1
    assert sink.value("hcp_chain_block_height") == 120
    assert sink.value("hcp_chain_indexer_lag_blocks") == 20
    record_chain(sink, None, 100)
    assert sink.value("hcp_chain_node_up") == 0
    assert sink.value("hcp_chain_block_height") == 120  # the last head seen, not a made-up 0


def test_sqlite_has_no_server_connections_to_count(tmp_path: Path) -> None:
    sink = PrometheusSink()
    DbConnections(connect(f"sqlite:///{tmp_path / 'h.db'}"), sink).record()  # no pg_stat_activity
    assert not sink.value("hcp_db_connections")
