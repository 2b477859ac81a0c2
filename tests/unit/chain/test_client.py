"""ChainClient: nonces shared with another process, unreachable nodes, bad configuration."""

from __future__ import annotations

import socket

import pytest

from hcp.errors import ChainUnavailableError, ConfigError
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.ids import op_key
from hcp.marketplace.chain.keys import KeyRing, Signer
from hcp.marketplace.chain.stack import ChainStack


def test_a_key_used_elsewhere_resyncs_the_nonce(stack: ChainStack) -> None:
    c, token = stack.client, stack.contracts.token
    key = Signer.from_key(b"\x11" * 32)
    c.send_value(stack.operator, key.address, 10**18)
    c.transact(token.functions.setMinter(key.address, True), stack.operator)
    c.transact(token.functions.mint(key.address, 1, op_key("a")), key)
    # Another process (its own nonce counter) sends with the same key...
    ChainClient(c.w3, in_process=True).transact(token.functions.mint(key.address, 2, op_key("b")), key)
    # ...so this client's counter is stale: it must resync instead of failing.
    c.transact(token.functions.mint(key.address, 4, op_key("c")), key)
    assert c.call(token.functions.balanceOf(key.address)) == 7


def test_unreachable_node_is_a_typed_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ChainUnavailableError):
        ChainClient.from_url(f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError):
        ChainClient.from_url("ftp://example.invalid")


def test_keyring_is_deterministic_and_rejects_short_seeds() -> None:
    a, b = KeyRing(b"s" * 32), KeyRing(b"s" * 32)
    assert a.address("alice") == b.address("alice") != a.address("bob")
    assert KeyRing(b"t" * 32).address("alice") != a.address("alice")
    with pytest.raises(ConfigError):
        KeyRing(b"short")
