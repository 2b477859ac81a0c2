"""web3.py client: providers, transactions with per-sender nonces, receipts, typed reverts.

Embedded default: py-evm in this process (``EthereumTesterProvider``). Production: any
JSON-RPC node (anvil, geth) by URL. Every refused call surfaces as ``ChainRevertError``
carrying the contract's revert string; an unreachable node as ``ChainUnavailableError``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import requests
from eth_utils.exceptions import ValidationError as _EthValidationError
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import TxReceipt

from hcp.marketplace.chain.keys import Signer
from hcp.observability.sink import MetricsSink, NullSink

try:  # the in-process chain raises its own exception type for reverts
    from eth_tester.exceptions import TransactionFailed as _TesterRevert
except ImportError:  # pragma: no cover - eth-tester is a declared dependency
    class _TesterRevert(Exception):  # type: ignore[no-redef]
        pass
from hcp.errors import ChainRevertError, ChainUnavailableError, ConfigError
from hcp.resilience.breaker import DependencyBreaker
from hcp.resilience.registry import Dependency, guard_of

log = logging.getLogger(__name__)

_REASON = re.compile(r"(?:execution reverted|reverted with reason string|revert)[:\s]*'?([A-Za-z0-9_ ]*)")
_REVERTS = (ContractLogicError, ContractCustomError, ContractPanicError, _TesterRevert)
GAS_HEADROOM = 1.25
TIP_WEI = 10**9


def _reason_of(exc: Exception) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    m = _REASON.search(msg)
    reason = m.group(1).strip() if m and m.group(1).strip() else msg
    return reason.strip("'\" ")


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    gas_used: int
    receipt: TxReceipt


class ChainClient:
    """One connection to one chain. Thread-safe: senders are serialized per address."""

    def __init__(self, w3: Web3, *, in_process: bool, receipt_timeout: float = 120.0) -> None:
        self.w3 = w3
        self.in_process = in_process
        self.receipt_timeout = receipt_timeout
        # Unused gas is not charged (EIP-1559): a fixed, generous limit saves an estimate per tx.
        self.gas_limit = 3_000_000
        self._chain_id: int | None = None
        self._nonces: dict[str, int] = {}
        self._sender_locks: dict[str, threading.Lock] = {}
        self._fee: tuple[int, float] | None = None
        self._locks_guard = threading.Lock()
        # py-evm is not thread-safe: in process, one call at a time.
        self._evm_lock = threading.RLock() if in_process else None
        self.breaker: DependencyBreaker | None = None  # None: the process's chain breaker
        # The process's sink (an actor sets its own): transactions pending and send-to-receipt.
        self.sink: MetricsSink = NullSink()
        self.monotonic: Callable[[], float] = time.monotonic
        self._pending = 0
        self._pending_lock = threading.Lock()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def in_process(cls) -> ChainClient:
        from web3 import EthereumTesterProvider

        return cls(Web3(EthereumTesterProvider()), in_process=True)

    @classmethod
    def from_url(cls, url: str, receipt_timeout: float = 120.0) -> ChainClient:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"chain RPC URL must be http(s): {url!r}")
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        client = cls(w3, in_process=False, receipt_timeout=receipt_timeout)
        _ = client.chain_id  # fail now if the node is not there
        return client

    @classmethod
    def from_settings(cls, settings: Any) -> ChainClient:
        if settings.chain.rpc_url:
            return cls.from_url(settings.chain.rpc_url, settings.chain.receipt_timeout_seconds)
        return cls.in_process()

    # -- reads -----------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: self.w3.eth.chain_id)
        return self._chain_id

    def block_number(self) -> int:
        return self._rpc(lambda: self.w3.eth.block_number)

    def get_block(self, number: int | str) -> Any:
        return self._rpc(lambda: self.w3.eth.get_block(number))

    def get_logs(self, params: dict[str, Any]) -> list[Any]:
        return self._rpc(lambda: self.w3.eth.get_logs(params))

    def eth_balance(self, address: str) -> int:
        return self._rpc(lambda: self.w3.eth.get_balance(address))

    def call(self, fn: ContractFunction, block: int | str = "latest") -> Any:
        try:
            return self._rpc(lambda: fn.call(block_identifier=block))
        except _REVERTS as exc:
            raise self._revert(fn, exc) from None

    def default_signer(self) -> Signer:
        """The node's first unlocked account (dev chains: eth-tester, anvil)."""
        accounts = self._rpc(lambda: self.w3.eth.accounts)
        if not accounts:
            raise ConfigError("the node has no unlocked account; set HCP_CHAIN_OPERATOR_KEY")
        return Signer.unlocked(accounts[0])

    # -- writes ----------------------------------------------------------------------------
    def transact(self, fn: ContractFunction, sender: Signer, *, value: int = 0) -> TxResult:
        """Send ``fn`` from ``sender`` and wait for its receipt; reverts raise ChainRevertError."""
        with self._sender_lock(sender.address):
            # One eth_call surfaces a revert with its reason; a gas *estimate* runs the call
            # a dozen times (binary search), which dominates on the in-process EVM.
            params: dict[str, Any] = {"from": sender.address}
            if value:
                params["value"] = value
            try:
                self._rpc(lambda: fn.call(params))
            except _REVERTS as exc:
                raise self._revert(fn, exc) from None
            receipt = self._send_built(lambda: self._rpc(lambda: fn.build_transaction(
                self._base_tx(sender, self.gas_limit, value))), sender)
        if receipt["status"] != 1:
            # Another sender changed state between estimate and mining: replay for the reason.
            self.call(fn, block=receipt["blockNumber"] - 1)
            raise ChainRevertError(f"{fn.fn_name} reverted", reason="unknown", function=fn.fn_name,
                                   tx_hash=receipt["transactionHash"].to_0x_hex())
        return TxResult(receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"],
                        receipt["gasUsed"], receipt)

    def transact_batch(self, fns: Sequence[ContractFunction], sender: Signer) -> list[TxResult]:
        """Send every call of ``fns`` from ``sender`` back to back, then await their receipts.

        For bulk work (registering thousands of resources): no eth_call first and no wait
        between sends, so one round trip per call instead of three. A call that reverts raises
        ChainRevertError after the batch (the others stay mined).
        """
        hashes: list[Any] = []
        built: dict[int, dict[str, Any]] = {}  # the same call object repeated is encoded once
        results = []
        with _Flight(self) as flight:
            with self._sender_lock(sender.address):
                for fn in fns:
                    base = self._base_tx(sender, self.gas_limit, 0)
                    if id(fn) not in built:
                        built[id(fn)] = self._rpc(lambda f=fn, b=base: f.build_transaction(b))
                    tx = {**built[id(fn)], "nonce": base["nonce"], "maxFeePerGas": base["maxFeePerGas"]}
                    tx_hash = self._send_only(tx, sender)
                    flight.sent(tx_hash)
                    hashes.append((fn, tx_hash))
            for fn, tx_hash in hashes:
                receipt = self._receipt(tx_hash)
                flight.received(tx_hash)
                if receipt["status"] != 1:
                    raise ChainRevertError(f"{fn.fn_name} reverted in a batch", reason="unknown",
                                           function=fn.fn_name,
                                           tx_hash=receipt["transactionHash"].to_0x_hex())
                results.append(TxResult(receipt["transactionHash"].to_0x_hex(),
                                        receipt["blockNumber"], receipt["gasUsed"], receipt))
        return results

    def send_value(self, sender: Signer, to: str, value: int) -> TxResult:
        def build() -> dict[str, Any]:
            tx = self._base_tx(sender, 21_000, value)
            tx["to"] = Web3.to_checksum_address(to)
            return tx

        with self._sender_lock(sender.address):
            receipt = self._send_built(build, sender)
        return TxResult(receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"],
                        receipt["gasUsed"], receipt)

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, sender: Signer, *args: Any) -> str:
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        ctor = factory.constructor(*args)
        with self._sender_lock(sender.address):
            gas = self._rpc(lambda: ctor.estimate_gas({"from": sender.address}))
            receipt = self._send_built(lambda: self._rpc(lambda: ctor.build_transaction(
                self._base_tx(sender, int(gas * GAS_HEADROOM), 0))), sender)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise ChainRevertError("contract deployment failed", reason="deploy")
        return receipt["contractAddress"]

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Any:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    # -- dev-chain controls (anvil / eth-tester) -------------------------------------------
    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next mined block carries ``timestamp`` (exact durations in tests)."""
        if self.in_process:
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            with self._evm_guard():
                tester.time_travel(timestamp)
        else:
            self._raw("evm_setNextBlockTimestamp", [timestamp])

    def mine(self, blocks: int = 1) -> None:
        if self.in_process:
            with self._evm_guard():
                self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]
        else:
            self._raw("anvil_mine", [hex(blocks)])

    def snapshot(self) -> Any:
        if self.in_process:
            with self._evm_guard():
                return self.w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]
        return self._raw("evm_snapshot", [])

    def revert_to(self, snapshot_id: Any) -> None:
        if self.in_process:
            with self._evm_guard():
                self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)  # type: ignore[attr-defined]
        else:
            self._raw("evm_revert", [snapshot_id])
        with self._locks_guard:
            self._nonces.clear()  # nonces went back with the chain

    def transact_bulk(self, fn: ContractFunction, address: str, count: int,
                      chunk: int = 500) -> list[dict[str, Any]]:
        """Dev chains over JSON-RPC (anvil) only: send ``fn`` ``count`` times from ``address``.

        For seeding thousands of records in tests and benchmarks. The node signs for the
        address (``anvil_impersonateAccount``), the sends go ``chunk`` to one JSON-RPC batch
        with automine off, then blocks are mined until every send is in. The receipts (raw
        JSON-RPC objects); a reverted send raises ChainRevertError.
        """
        if self.in_process:
            raise ConfigError("transact_bulk needs a JSON-RPC dev node (anvil)")
        sender = Signer.unlocked(Web3.to_checksum_address(address))
        self._raw("anvil_impersonateAccount", [sender.address])
        hashes: list[str] = []
        with _Flight(self) as flight:
            with self._sender_lock(sender.address):
                # A measured limit, not the generous default: a block takes as many sends as fit.
                gas = int(self._rpc(lambda: fn.estimate_gas({"from": sender.address})) * GAS_HEADROOM)
                base = self._base_tx(sender, gas, 0)
                tx = self._rpc(lambda: fn.build_transaction(base))
                # Full blocks raise the base fee 12.5% each: a fee cap of 2 x base fee would strand
                # the tail of the batch in the pool, so the cap is wide and the dev account topped up.
                fee_cap = 100 * self._base_fee() + TIP_WEI
                self._raw("anvil_setBalance", [sender.address, hex(self.eth_balance(sender.address)
                                                                   + count * gas * fee_cap)])
                fields = {"from": sender.address, "to": tx["to"], "data": tx["data"], "gas": hex(gas),
                          "maxFeePerGas": hex(fee_cap), "maxPriorityFeePerGas": hex(TIP_WEI)}
                self._raw("evm_setAutomine", [False])
                try:
                    for start in range(0, count, chunk):
                        reqs = [("eth_sendTransaction", [{**fields, "nonce": hex(base["nonce"] + i)}])
                                for i in range(start, min(count, start + chunk))]
                        sent = [self._batch_result(r) for r in self._rpc(
                            lambda q=reqs: self.w3.provider.make_batch_request(q))]  # type: ignore[attr-defined]
                        hashes += sent
                        flight.sent(*sent)
                    # Each block takes what fits under its gas limit: mine until the last is in
                    # (or a block comes out empty: what is left cannot be mined).
                    for _ in range(count + 1):
                        self._raw("anvil_mine", ["0x1"])
                        if self._raw("eth_getTransactionReceipt", [hashes[-1]]) is not None:
                            break
                        if int(self._raw("eth_getBlockTransactionCountByNumber", ["latest"]), 16) == 0:
                            break
                finally:
                    self._raw("evm_setAutomine", [True])
                self._nonces[sender.address] = base["nonce"] + count
            receipts: list[dict[str, Any]] = []
            for start in range(0, len(hashes), chunk):
                reqs = [("eth_getTransactionReceipt", [h]) for h in hashes[start:start + chunk]]
                got = [self._batch_result(r) for r in self._rpc(
                    lambda q=reqs: self.w3.provider.make_batch_request(q))]  # type: ignore[attr-defined]
                receipts += got
                flight.received(*(h for h, r in zip(hashes[start:start + chunk], got)
                                  if r is not None))
        failed = [r for r in receipts if r is None or int(r["status"], 16) != 1]
        if failed:
            raise ChainRevertError(f"{len(failed)} of {count} bulk sends of {fn.fn_name} failed",
                                   reason="unknown", function=fn.fn_name)
        return receipts

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _batch_result(item: Any) -> Any:
        if "error" in item:
            raise ChainRevertError(f"bulk send refused: {item['error']}", reason="rejected")
        return item.get("result")

    def _raw(self, method: str, params: list[Any]) -> Any:
        resp = self._rpc(lambda: self.w3.provider.make_request(method, params))  # type: ignore[arg-type]
        if "error" in resp:
            raise ChainUnavailableError(f"{method} failed: {resp['error']}")
        return resp.get("result")

    def _base_tx(self, sender: Signer, gas: int, value: int) -> dict[str, Any]:
        return {
            "from": sender.address,
            "chainId": self.chain_id,
            "nonce": self._next_nonce(sender.address),
            "gas": gas,
            "value": value,
            "maxFeePerGas": 2 * self._base_fee() + TIP_WEI,
            "maxPriorityFeePerGas": TIP_WEI,
        }

    def _base_fee(self) -> int:
        # 2 x base fee + tip covers several blocks of EIP-1559 increases (12.5% each), so a
        # value a couple of seconds old is as good as a fresh one and saves a call per send.
        now = time.monotonic()
        if self._fee is None or now - self._fee[1] > 2.0:
            base = self._rpc(lambda: self.w3.eth.get_block("latest")).get("baseFeePerGas") or 10**9
            self._fee = (base, now)
        return self._fee[0]

    def _next_nonce(self, address: str) -> int:
        # Called under the sender's lock: after the first send the local counter is the truth;
        # a node that disagrees (another process used the key) makes _send_built resync.
        if address not in self._nonces:
            self._nonces[address] = self._rpc(lambda: self.w3.eth.get_transaction_count(address, "pending"))
        return self._nonces[address]

    def _send_only(self, tx: dict[str, Any], sender: Signer) -> Any:
        """Sign (or hand to the unlocked account) and send; the next nonce is counted locally."""
        try:
            if sender.account is not None:
                raw = sender.account.sign_transaction(tx).raw_transaction
                tx_hash = self._rpc(lambda: self.w3.eth.send_raw_transaction(raw))
            else:
                tx_hash = self._rpc(lambda: self.w3.eth.send_transaction(tx))  # type: ignore[arg-type]
        except (Web3RPCError, ValueError, _EthValidationError) as exc:
            self._nonces.pop(sender.address, None)  # resync from the node
            raise ChainRevertError(f"transaction refused by the node: {exc}", reason="rejected") from None
        self._nonces[sender.address] = tx["nonce"] + 1
        return tx_hash

    def _send_built(self, build: Any, sender: Signer) -> TxReceipt:
        """Build, sign, send, await the receipt; one resync-and-retry on a stale nonce."""
        for attempt in (1, 2):
            tx = build()
            try:
                if sender.account is not None:
                    signed = sender.account.sign_transaction(tx)
                    raw = signed.raw_transaction
                    tx_hash = self._rpc(lambda r=raw: self.w3.eth.send_raw_transaction(r))
                else:
                    tx_hash = self._rpc(lambda t=tx: self.w3.eth.send_transaction(t))  # type: ignore[arg-type]
            except (Web3RPCError, ValueError, _EthValidationError) as exc:
                self._nonces.pop(sender.address, None)  # resync from the node
                if attempt == 1 and "nonce" in str(exc).lower():
                    log.info("stale nonce for %s; resynced from the node", sender.address)
                    continue
                raise ChainRevertError(f"transaction refused by the node: {exc}", reason="rejected") from None
            self._nonces[sender.address] = tx["nonce"] + 1
            with _Flight(self) as flight:
                flight.sent(tx_hash)
                receipt = self._receipt(tx_hash)
                flight.received(tx_hash)
            return receipt
        raise AssertionError("unreachable")

    def _receipt(self, tx_hash: Any) -> TxReceipt:
        try:
            # Waiting for a block is not one call: its length says nothing of the node's health.
            return self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=0.05), through_breaker=False)
        except TimeExhausted:
            raise ChainUnavailableError(f"no receipt for {tx_hash.to_0x_hex()} in {self.receipt_timeout}s",
                                        tx_hash=tx_hash.to_0x_hex()) from None

    def _count_pending(self, change: int) -> None:
        # The absolute count, set under the lock: concurrent senders cannot set it out of
        # order, and a gauge set (not added to) cannot drift from the truth.
        with self._pending_lock:
            self._pending = max(0, self._pending + change)
            self.sink.set("hcp_chain_transactions_pending", self._pending)

    def _revert(self, fn: ContractFunction, exc: Exception) -> ChainRevertError:
        reason = _reason_of(exc)
        return ChainRevertError(f"{fn.fn_name} reverted: {reason}", reason=reason, function=fn.fn_name)

    def _sender_lock(self, address: str) -> threading.Lock:
        with self._locks_guard:
            return self._sender_locks.setdefault(address, threading.Lock())

    def _evm_guard(self) -> Any:
        return self._evm_lock if self._evm_lock is not None else _NullLock()

    def _rpc(self, op: Any, *, through_breaker: bool = True) -> Any:
        if self.in_process or not through_breaker:  # py-evm: no node to be unreachable
            try:
                with self._evm_guard():
                    return op()
            except (requests.ConnectionError, requests.Timeout, ConnectionError,
                    ProviderConnectionError) as exc:
                raise ChainUnavailableError(f"chain node unreachable: {exc}") from None
        # A node that is down opens the chain breaker: later calls fail fast (503 with
        # retry_after) instead of each waiting out the HTTP timeout; a revert is an answer.
        with guard_of(Dependency.CHAIN, self.breaker):
            try:
                return op()
            except (requests.ConnectionError, requests.Timeout, ConnectionError,
                    ProviderConnectionError) as exc:
                raise ChainUnavailableError(f"chain node unreachable: {exc}") from None


class _Flight:
    """The transactions one call has sent and awaits: pending from send to receipt, each
    receipt observed in ``hcp_chain_transaction_seconds``. Leaving the block ends the wait
    for the rest (a wait that timed out, a batch that stopped at a revert): no longer
    pending, and nothing observed for them."""

    def __init__(self, client: ChainClient) -> None:
        self._client = client
        self._sent: dict[Any, float] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sent:
            self._client._count_pending(-len(self._sent))
            self._sent.clear()

    def sent(self, *tx_hashes: Any) -> None:
        if tx_hashes:
            now = self._client.monotonic()
            self._sent.update(dict.fromkeys(tx_hashes, now))
            self._client._count_pending(len(tx_hashes))

    def received(self, *tx_hashes: Any) -> None:
        now = self._client.monotonic()
        took = [now - self._sent.pop(h) for h in tx_hashes if h in self._sent]
        if took:
            self._client._count_pending(-len(took))
            for seconds in took:
                self._client.sink.observe("hcp_chain_transaction_seconds", seconds)


class _NullLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
