"""``tests.unit.optimizer.test_service`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.optimizer.test_service import *  # noqa: F403
