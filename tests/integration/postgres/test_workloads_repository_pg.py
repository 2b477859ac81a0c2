"""``tests.unit.workloads.test_repository`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.workloads.test_repository import *  # noqa: F403
