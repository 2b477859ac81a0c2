"""``tests.unit.marketplace.test_oracle_standing`` on PostgreSQL."""

# isort: off
from tests.unit.marketplace.test_oracle_standing import *  # noqa: F403
from tests.unit.marketplace.conftest import *  # noqa: F403 -- its fixtures
# isort: on
