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
MODEL_MODULES = ["hcp.agent.models", "hcp.api.usage", "hcp.chain.models", "hcp.images.models",
                 "hcp.marketplace.models", "hcp.notary.models", "hcp.optimizer.models",
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
