"""``tests.unit.notary.test_ledger`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.notary.test_ledger import *  # noqa: F403
