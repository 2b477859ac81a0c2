"""PostgreSQL for the store-backed unit tests re-run here (see the modules of this folder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_postgres_database


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url
