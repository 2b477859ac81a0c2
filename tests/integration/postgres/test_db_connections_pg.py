"""``hcp_db_connections`` from a real PostgreSQL's pg_stat_activity."""

from __future__ import annotations

from hcp.observability.sink import PrometheusSink
from hcp.observability.stores import DbConnections
from hcp.store import connect


def test_the_servers_connections_to_this_database_are_counted(database_url: str) -> None:
    engine = connect(database_url)
    other = connect(database_url)
    try:
        held = [other.connect() for _ in range(3)]  # three more sessions on the server
        sink = PrometheusSink()
        DbConnections(engine, sink).record()
        seen = sink.value("hcp_db_connections")
        assert seen is not None and seen >= 4  # the three, and the recorder's own
        for c in held:
            c.close()
        other.dispose()
        DbConnections(engine, sink).record()
        assert (sink.value("hcp_db_connections") or 0) < seen
    finally:
        other.dispose()
        engine.dispose()
