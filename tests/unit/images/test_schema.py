"""The frozen migration 0009_images builds exactly the tables the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import hcp.images.models  # noqa: F401  (registers the tables)
from hcp.store.models import Base

MIGRATION = Path(__file__).parents[3] / "hcp/store/migrations/versions/0009_images.py"


def test_migration_matches_models(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    with sqlite_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [d for d in diff if "img_" in repr(d)]
    assert mine == []


def test_migration_is_frozen() -> None:
    imports = [line for line in MIGRATION.read_text().splitlines()
               if line.startswith(("import ", "from "))]
    assert imports == ["import sqlalchemy as sa", "from alembic import op"]
