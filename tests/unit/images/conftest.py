from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hcp.images.store.embedded import EmbeddedStore


class ManualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 12, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


_TEMPLATE: list[Path] = []


def _migrated_template() -> Path:
    """One migrated SQLite file per test process; each store starts from a copy of it (running
    every branch's migrations costs about half a second, a copy a millisecond)."""
    if not _TEMPLATE:
        import tempfile

        from hcp.store.db import connect, migrate

        path = Path(tempfile.mkdtemp(prefix="hcp-img-schema-")) / "template.db"
        engine = connect(f"sqlite:///{path}")
        migrate(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


def make_store(tmp: Path, cap: int = 10 << 20, clock: ManualClock | None = None) -> EmbeddedStore:
    import shutil

    from hcp.store.db import connect

    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_template(), tmp / "store.db")
    engine = connect(f"sqlite:///{tmp / 'store.db'}")
    return EmbeddedStore(tmp / "store", engine, cap, clock or ManualClock(), lease_ttl_seconds=3600)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[EmbeddedStore]:
    s = make_store(tmp_path, clock=clock)
    yield s
    s.engine.dispose()
