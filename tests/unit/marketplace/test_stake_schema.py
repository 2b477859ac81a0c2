"""The frozen migration 0011_stake builds exactly the table the model describes, on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import hcp.marketplace.models  # noqa: F401  (registers the tables)
from hcp.store.models import Base

MIGRATION = Path(__file__).parents[3] / "hcp/store/migrations/versions/0011_stake.py"


def test_migration_matches_the_model(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "ledger_stakes" in repr(d)] == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ledger_stakes").scalar() == 0


def test_migration_is_frozen() -> None:
    text = MIGRATION.read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import sqlalchemy as sa", "from alembic import op"]
    assert 'revision = "0011_stake"' in text and 'down_revision = "0005_marketplace"' in text
