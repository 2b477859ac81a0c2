"""Unit tests never start Ray: any ray.init call fails the test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import ray
    except ImportError:
        return

    def refuse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("unit tests must not start Ray (move the test to tests/integration)")

    monkeypatch.setattr(ray, "init", refuse)
