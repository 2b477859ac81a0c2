"""The frozen migration 0013_agent builds exactly the tables the models describe."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import hcp.agent.models  # noqa: F401  (registers the tables)
from hcp.store.models import Base

MIGRATION = Path(__file__).parents[3] / "hcp/store/migrations/versions/0013_agent.py"


def test_migration_matches_models(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if re.search(r"(?<![a-z])ag_", repr(d))] == []


def test_migration_is_frozen() -> None:
    imports = [line for line in MIGRATION.read_text().splitlines()
               if line.startswith(("import ", "from "))]
    assert imports == ["import sqlalchemy as sa", "from alembic import op"]
    body = MIGRATION.read_text()
    assert 'revision = "0013_agent"' in body and 'down_revision = "0005_marketplace"' in body
