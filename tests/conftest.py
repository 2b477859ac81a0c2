"""Shared test setup: offline model loading, fresh PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

PG_ADMIN_URL = os.environ.get("HCP_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards.

    The test command starts PostgreSQL when it is not running; if it still cannot be
    reached, the tests that need it fail (they never skip).
    """
    import psycopg

    name = f"hcp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test against the embedded default (SQLite file) and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hcp.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


_TEMPLATE: list[Path] = []


def migrated_sqlite_url(directory: Path, name: str = "hcp.db") -> str:
    """A SQLite store at its schema's heads, in ``directory``: a copy of one file migrated once
    per test process (running every migration costs the better part of a second)."""
    import shutil
    import tempfile

    from hcp.store.db import connect, migrate

    if not _TEMPLATE or not _TEMPLATE[0].exists():
        path = Path(tempfile.mkdtemp(prefix="hcp-schema-")) / "template.db"
        engine = connect(f"sqlite:///{path}")
        migrate(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _TEMPLATE[:] = [path]
    target = directory / name
    shutil.copyfile(_TEMPLATE[0], target)
    target.chmod(0o600)
    return f"sqlite:///{target}"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store in the test's own directory."""
    from hcp.store.db import connect

    engine = connect(migrated_sqlite_url(tmp_path, "store.db"))
    yield engine
    engine.dispose()


# -- the suite leaves the checkout as it found it ---------------------------------------------
_ROOT = Path(__file__).resolve().parents[1]
_DIRTY_AT_START: set[str] | None = None


def _dirty() -> set[str] | None:
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=_ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an sdist): nothing to compare
    return {line[3:] for line in out.splitlines() if line.strip()}


def pytest_sessionstart(session: pytest.Session) -> None:
    global _DIRTY_AT_START
    if not hasattr(session.config, "workerinput"):  # the controller only, not xdist workers
        _DIRTY_AT_START = _dirty()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that writes into the tree (a lock file rewritten, a build artefact, a database
    file) fails the run: ``make test`` must leave ``git status`` as it was."""
    if hasattr(session.config, "workerinput") or _DIRTY_AT_START is None:
        return
    now = _dirty()
    added = sorted((now or set()) - _DIRTY_AT_START)
    if added:
        print(f"\nthe test run changed the checkout: {', '.join(added[:20])}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
