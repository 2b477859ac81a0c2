"""``tests.unit.marketplace.test_wallet`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.marketplace.conftest import *  # noqa: F403 -- its fixtures
from tests.unit.marketplace.test_wallet import *  # noqa: F403
