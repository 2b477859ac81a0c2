"""One in-process chain per test session; every test runs on a snapshot reverted afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hcp.config import Settings
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.keys import KeyRing
from hcp.marketplace.chain.market import ChainMarketplace
from hcp.marketplace.chain.stack import ChainStack, open_chain

SEED = "unit-test-wallet-seed-0123456789"


@pytest.fixture(scope="session")
def _deployed(tmp_path_factory: pytest.TempPathFactory) -> ChainStack:
    home: Path = tmp_path_factory.mktemp("chain-home")
    return open_chain(Settings(home=home, chain_wallet_seed=SEED), client=ChainClient.in_process())


@pytest.fixture
def stack(_deployed: ChainStack) -> Iterator[ChainStack]:
    """A fresh view of the session chain (no caches carried between tests), rolled back after."""
    snap = _deployed.client.snapshot()
    escrow = ChainEscrowBackend(_deployed.client, _deployed.contracts, KeyRing(SEED.encode()),
                                _deployed.operator)
    yield ChainStack(_deployed.client, _deployed.contracts, escrow.keys, _deployed.operator, escrow,
                     ChainMarketplace(escrow))
    _deployed.client.revert_to(snap)
