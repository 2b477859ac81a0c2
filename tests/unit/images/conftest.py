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


def make_store(tmp: Path, cap: int = 10 << 20, clock: ManualClock | None = None) -> EmbeddedStore:
    from hcp.store.db import connect, migrate

    engine = connect(f"sqlite:///{tmp / 'store.db'}")
    migrate(engine)
    return EmbeddedStore(tmp / "store", engine, cap, clock or ManualClock(), lease_ttl_seconds=3600)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[EmbeddedStore]:
    s = make_store(tmp_path, clock=clock)
    yield s
    s.engine.dispose()
