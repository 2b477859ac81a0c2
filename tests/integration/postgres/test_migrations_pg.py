"""``tests.unit.test_migrations`` on PostgreSQL: every migration from an empty database."""

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_postgres_database
from tests.unit.test_migrations import *  # noqa: F403


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url
