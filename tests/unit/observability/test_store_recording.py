"""The image store's and chain's recording helpers, and the database-connections recorder on
the embedded default (tests/integration/postgres reads a real server's)."""

from __future__ import annotations

from pathlib import Path

from hcp.images.store.base import RepoStat
from hcp.observability.sink import PrometheusSink
from hcp.observability.stores import DbConnections, record_chain, record_image_store
from hcp.store import connect


def test_the_image_store_stat_becomes_its_gauges() -> None:
    sink = PrometheusSink()
    record_image_store(sink, RepoStat(used_bytes=5_000, cap_bytes=10_000, blocks=7, pins=2,
                                      leases=0), "embedded")
    assert sink.value("hcp_image_store_size_bytes", backend="embedded") == 5_000
    assert sink.value("hcp_image_store_pins", backend="embedded") == 2


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
