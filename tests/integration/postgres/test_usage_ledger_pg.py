"""``tests.unit.api.test_usage_ledger`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.api.test_usage_ledger import *  # noqa: F403
