from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hcp.images.store.embedded import EmbeddedStore
from tests.unit.images.conftest import make_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = make_store(tmp_path / "node-a", cap=64 << 20)
    yield s
    s.engine.dispose()
