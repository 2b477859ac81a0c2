"""anvil (npm @foundry-rs/anvil) started once per test session on a free port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hcp.config import Settings
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.keys import KeyRing
from hcp.marketplace.chain.market import ChainMarketplace
from hcp.marketplace.chain.stack import ChainStack, open_chain

ANVIL = Path(__file__).resolve().parents[3] / "node_modules" / ".bin" / "anvil"
SEED = "integration-wallet-seed-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_anvil() -> Iterator[str]:
    """A private anvil on a free port, its URL while the block runs."""
    assert ANVIL.exists(), "anvil missing: run `npm ci` in the repository root"
    port = _free_port()
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"anvil exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                               timeout=2)
                if r.status_code == 200 and "result" in r.json():
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("anvil did not answer within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    with running_anvil() as url:
        yield url


@pytest.fixture(scope="session")
def anvil_settings(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("anvil-home")
    return Settings(home=home, chain_rpc_url=anvil_url, chain_wallet_seed=SEED,
                    chain_deployment=home / "deployment.json", database_url=f"sqlite:///{home / 'hcp.db'}")


@pytest.fixture(scope="session")
def _anvil_deployed(anvil_settings: Settings) -> ChainStack:
    return open_chain(anvil_settings)


@pytest.fixture
def anvil_stack(_anvil_deployed: ChainStack) -> Iterator[ChainStack]:
    """The session's anvil chain, rolled back (evm_snapshot / evm_revert) after each test."""
    d = _anvil_deployed
    snap = d.client.snapshot()
    escrow = ChainEscrowBackend(d.client, d.contracts, KeyRing(SEED.encode()), d.operator)
    yield ChainStack(d.client, d.contracts, escrow.keys, d.operator, escrow, ChainMarketplace(escrow))
    d.client.revert_to(snap)


def reconnect(url: str) -> ChainClient:
    return ChainClient.from_url(url)
