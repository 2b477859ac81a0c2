"""``tests.unit.marketplace.test_search`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

# isort: off
from tests.unit.marketplace.test_search import *  # noqa: F403
# The fixtures last: the test module's own imports (hypothesis's ``settings``) must not
# shadow the ``settings`` fixture.
from tests.unit.marketplace.conftest import *  # noqa: F403 -- its fixtures
# isort: on
