"""Unit tests need nothing running: any ray.init call fails the test, and stores are SQLite
files (the same tests run on PostgreSQL from tests/integration/postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The embedded default store (a SQLite file at its schema's heads); PostgreSQL is the
    integration tier's."""
    from tests.conftest import migrated_sqlite_url

    yield migrated_sqlite_url(tmp_path)


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import ray
    except ImportError:
        return

    def refuse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("unit tests must not start Ray (move the test to tests/integration)")

    monkeypatch.setattr(ray, "init", refuse)
