"""Append-only tables enforced by the database itself (SQLite and PostgreSQL triggers).

Shared by the migrations whose tables are evidence (the event log, optimizer decisions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alembic import op


def forbid_rewrites(tables: Sequence[str], function: str, sqlite_message: Callable[[str], str],
                    pg_message: str) -> None:
    """Refuse UPDATE and DELETE on ``tables``; ``function`` names the PostgreSQL trigger function."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in tables:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{sqlite_message(table)}'); END;"
                )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{pg_message}'{', TG_TABLE_NAME' if '%' in pg_message else ''}; END; "
            "$$ LANGUAGE plpgsql;"
        )
        for table in tables:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}();"
            )


def allow_rewrites(tables: Sequence[str], function: str) -> None:
    """Undo ``forbid_rewrites`` on PostgreSQL (SQLite triggers go with their tables)."""
    if op.get_bind().dialect.name == "postgresql":
        for table in tables:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
