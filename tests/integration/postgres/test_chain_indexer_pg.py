"""``tests.unit.chain.test_indexer`` on PostgreSQL (the unit tier runs it on SQLite files only)."""

from tests.unit.chain.conftest import _deployed, stack  # noqa: F401 -- its fixtures (not star-exported)
from tests.unit.chain.test_indexer import *  # noqa: F403
