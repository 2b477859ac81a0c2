"""ChainClient's transaction metrics: pending from send to receipt (back to 0 however the
wait ends) and one send-to-receipt observation per transaction whose receipt arrived."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from hcp.errors import ChainRevertError, ChainUnavailableError
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.ids import op_key
from hcp.marketplace.chain.keys import Signer
from hcp.marketplace.chain.stack import ChainStack
from hcp.observability.sink import PrometheusSink
from hcp.observability.spec import MetricSpec

PENDING, SECONDS = "hcp_chain_transactions_pending", "hcp_chain_transaction_seconds"


class _PendingLog(PrometheusSink):
    """Checked against the catalogue like every sink; keeps each pending value it was set to."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[float] = []

    def _set(self, s: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        if s.name == PENDING:
            self.pending.append(value)
        super()._set(s, value, labels)


class _Ticks:
    """A monotonic clock one second further on at each reading."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def client(stack: ChainStack) -> Iterator[ChainClient]:
    """A client of its own on the session chain (the stack's reverts to its snapshot after)."""
    c = ChainClient(stack.client.w3, in_process=True)
    c.sink, c.monotonic = _PendingLog(), _Ticks()
    yield c


def _sink(c: ChainClient) -> _PendingLog:
    assert isinstance(c.sink, _PendingLog)
    return c.sink


def _funded(stack: ChainStack, c: ChainClient) -> Signer:
    key = Signer.from_key(b"\x22" * 32)
    c.send_value(stack.operator, key.address, 10**18)
    return key


def test_each_transaction_is_pending_until_its_receipt_and_observed_once(
        stack: ChainStack, client: ChainClient) -> None:
    sink, token = _sink(client), stack.contracts.token
    key = _funded(stack, client)
    # One send, its receipt one tick later: the clock is the client's.
    assert sink.pending == [1, 0]
    assert sink.value(f"{SECONDS}_count") == 1 and sink.value(f"{SECONDS}_sum") == 1.0

    client.transact(token.functions.setMinter(key.address, True), stack.operator)
    client.transact_batch([token.functions.mint(key.address, n, op_key(f"m{n}")) for n in (1, 2, 3)],
                          key)
    # All three of the batch are sent before the first receipt is awaited.
    assert sink.pending == [1, 0, 1, 0, 1, 2, 3, 2, 1, 0]
    assert sink.value(PENDING) == 0
    assert sink.value(f"{SECONDS}_count") == 5
    assert client.call(token.functions.balanceOf(key.address)) == 6


def test_a_batch_that_stops_at_a_revert_leaves_nothing_pending(
        stack: ChainStack, client: ChainClient) -> None:
    sink, token = _sink(client), stack.contracts.token
    key = _funded(stack, client)
    calls = [token.functions.approve(stack.operator.address, 1),
             token.functions.mint(key.address, 1, op_key("not-a-minter")),  # reverts
             token.functions.approve(stack.operator.address, 2)]
    with pytest.raises(ChainRevertError):
        client.transact_batch(calls, key)
    # The third was sent and is not awaited once the second reverted: no longer pending.
    assert max(sink.pending) == 3 and sink.value(PENDING) == 0
    assert sink.value(f"{SECONDS}_count") == 1 + 2  # the funding, the approve, the revert


def test_a_receipt_wait_that_times_out_is_no_longer_pending(
        stack: ChainStack, client: ChainClient) -> None:
    sink = _sink(client)
    key = _funded(stack, client)
    tester = client.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    client.receipt_timeout = 0.2
    tester.disable_auto_mine_transactions()  # sent, never mined: no receipt comes
    try:
        with pytest.raises(ChainUnavailableError):
            client.send_value(stack.operator, key.address, 1)
    finally:
        tester.enable_auto_mine_transactions()
    assert sink.pending[-2:] == [1, 0] and sink.value(PENDING) == 0
    assert sink.value(f"{SECONDS}_count") == 1  # the funding only
