from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hcp.images.store.embedded import EmbeddedStore
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import KeyRing, Signer, Verifier
from tests.unit.images.conftest import ManualClock, _migrated_template, make_store


@dataclass
class World:
    """Three validators (k = 2), two providers, their key rings, one clock."""

    clock: ManualClock
    settings: OracleSettings
    validators: list[Signer]
    providers: dict[str, Signer]
    validator_keys: KeyRing
    provider_keys: KeyRing

    @property
    def validator_verifier(self) -> Verifier:
        return Verifier(self.validator_keys)

    @property
    def provider_verifier(self) -> Verifier:
        return Verifier(self.provider_keys)


def make_world(clock: ManualClock | None = None, n: int = 3, k: int = 2) -> World:
    clock = clock or ManualClock()
    settings = OracleSettings(validators=n, quorum=k)
    validators = [Signer.from_seed(f"val-{i}", bytes([i + 1]) * 32) for i in range(n)]
    providers = {p: Signer.from_seed(p, bytes([0x40 + i]) * 32)
                 for i, p in enumerate(["prov-a", "prov-b"])}
    return World(clock, settings, validators, providers,
                 KeyRing({v.identity: v.public_key for v in validators}),
                 KeyRing({p.identity: p.public_key for p in providers.values()}))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(clock: ManualClock) -> World:
    return make_world(clock)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[EmbeddedStore]:
    s = make_store(tmp_path / "node", cap=64 << 20, clock=clock)
    yield s
    s.engine.dispose()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store (a copy of the per-process migrated template)."""
    from hcp.store.db import connect

    shutil.copyfile(_migrated_template(), tmp_path / "oracle.db")
    e = connect(f"sqlite:///{tmp_path / 'oracle.db'}")
    yield e
    e.dispose()
