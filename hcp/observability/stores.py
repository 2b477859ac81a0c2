"""What the platform's stores look like to Prometheus: the image store's size and pins from
its own stat and how many of its peers answer, the chain's head, the indexer's lag behind it and whether the node answers
(the image-cache and chain-indexer actors record them each period), and the relational
store's server connections (``DbConnections``, PostgreSQL only)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from hcp.images.store.base import RepoStat
from hcp.observability.sink import MetricsSink


def record_image_store(sink: MetricsSink, stat: RepoStat, backend: str, peers: int) -> None:
    """``peers``: how many of the node's peers answer (``hcp.images.peers``)."""
    sink.set("hcp_image_store_size_bytes", stat.used_bytes, backend=backend)
    sink.set("hcp_image_store_pins", stat.pins, backend=backend)
    sink.set("hcp_image_store_peers", peers, backend=backend)


def record_chain(sink: MetricsSink, head: int | None, indexed: int | None) -> None:
    """``head``: the node's block number, None when it did not answer; ``indexed``: the last
    block the indexer committed."""
    sink.set("hcp_chain_node_up", 0 if head is None else 1)
    if head is None:
        return
    sink.set("hcp_chain_block_height", head)
    if indexed is not None:
        sink.set("hcp_chain_indexer_lag_blocks", max(0, head - indexed))


class DbConnections:
    """``hcp_db_connections``: the server's connections to this database, from
    ``pg_stat_activity`` (what the rental document's ``DatabaseHighLoad`` rule reads). SQLite
    has no server: nothing is recorded for it."""

    def __init__(self, engine: Engine, sink: MetricsSink) -> None:
        self._engine = engine
        self._sink = sink

    def record(self) -> None:
        if self._engine.dialect.name != "postgresql":
            return
        with self._engine.connect() as c:
            n = c.execute(text("SELECT count(*) FROM pg_stat_activity "
                               "WHERE datname = current_database()")).scalar()
        self._sink.set("hcp_db_connections", int(n or 0))
