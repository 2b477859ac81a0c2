"""The embedded store's index on PostgreSQL (production): holds, GC, the cap, reconcile."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcp.errors import StorageFullError
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from hcp.store.db import connect, migrate
from tests.conftest import fresh_postgres_database


def test_store_on_postgres(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        engine = connect(url)
        migrate(engine)
        s = EmbeddedStore(tmp_path, engine, 2_000_000)
        a = s.add([pattern_bytes("pg", 700_000)])
        b = s.add([pattern_bytes("pg2", 700_000)], pin=False)
        s.lease("job", b.cid)
        s.unpin(a.cid)
        assert s.gc().removed_blocks == a.blocks
        kept = s.add([pattern_bytes("pg3", 900_000)])
        with pytest.raises(StorageFullError):
            s.add([pattern_bytes("pg4", 900_000)])
        assert s.release("job") == 1
        s.gc()
        s.reconcile()
        assert s.stat().used_bytes <= 2_000_000 and [p.cid for p in s.pins()] == [kept.cid]
        assert b"".join(s.cat(kept.cid)) == pattern_bytes("pg3", 900_000)
        engine.dispose()
