"""Every migration is frozen (it imports nothing of the application) and the migrations
together build exactly the schema the models describe."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hcp.store.db import connect, migrate
from hcp.store.models import Base

VERSIONS = Path(__file__).parents[2] / "hcp/store/migrations/versions"
MODEL_MODULES = ["hcp.agent.models", "hcp.observability.history.models", "hcp.inference.usage", "hcp.marketplace.chain.models", "hcp.images.models",
                 "hcp.marketplace.models", "hcp.notary.models", "hcp.economics.optimizer.models",
                 "hcp.oracle.models", "hcp.ratelimit.models", "hcp.store.models",
                 "hcp.workloads.models"]
# What a migration may import: the libraries, and the migrations' own frozen helpers.
ALLOWED = ("__future__", "alembic", "sqlalchemy", "hcp.store.migrations.")


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append(node.module or "")
    return out


def test_no_migration_imports_application_code() -> None:
    files = sorted(VERSIONS.glob("0*.py"))
    assert len(files) >= 14
    bad = {f.name: m for f in files for m in _imports(f)
           if not (m in ALLOWED or m.startswith(ALLOWED))}
    assert bad == {}


@pytest.fixture
def empty_database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fresh.db'}"  # not the migrated template: every migration runs


def test_the_migrations_build_what_the_models_describe(empty_database_url: str) -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)  # registers its tables
    engine = connect(empty_database_url)
    migrate(engine)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_two_launches_migrating_at_once_both_succeed(empty_database_url: str) -> None:
    """Two processes of one platform start together: the migration lock serializes them, the
    second finds the schema at its heads, and neither fails."""
    import threading

    from alembic.script import ScriptDirectory

    from hcp.store.db import alembic_config

    errors: list[BaseException] = []
    engines = [connect(empty_database_url) for _ in range(2)]
    barrier = threading.Barrier(2)

    def launch(engine) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            migrate(engine)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=launch, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        heads = set(ScriptDirectory.from_config(alembic_config(engines[0])).get_heads())
        with engines[0].connect() as conn:
            versions = {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
        assert versions == heads
    finally:
        for e in engines:
            e.dispose()
