"""``tests.unit.marketplace.test_money_and_ledger`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.marketplace.conftest import *  # noqa: F403 -- its fixtures
from tests.unit.marketplace.test_money_and_ledger import *  # noqa: F403
