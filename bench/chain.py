"""Chain client figures: transaction latency and full job lifecycles per second.

Run as ``python -m bench.chain``. Baselines measured in the same run:
- tx latency: ``ChainClient.transact`` (one eth_call, fixed gas limit) vs the web3 default of
  estimating gas first (a binary search that executes the call a dozen times);
- lifecycles: the in-process py-evm chain vs anvil over JSON-RPC (started here on a free port);
- settlement gas (anvil): each settling path (complete, the three dispute outcomes, cancel) for a
  provider listing ``--resources`` resources vs the same provider listing one.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import emit, note, percentile
from hcp.config import Settings
from hcp.marketplace.chain.ids import op_key
from hcp.marketplace.chain.settlement import PATHS, register_many, settlement_gas
from hcp.marketplace.chain.stack import ChainStack, open_chain, run_lifecycle
from hcp.marketplace.escrow_backend import ONE_TOKEN

ANVIL = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "anvil"
SEED = "bench-wallet-seed-0123456789abcdef"


def _stack(rpc_url: str | None) -> ChainStack:
    home = Path(tempfile.mkdtemp(prefix="hcp-bench-chain-"))
    return open_chain(Settings(home=home, chain_wallet_seed=SEED, chain_rpc_url=rpc_url))


def _tx_latency(stack: ChainStack, n: int, estimate: bool) -> list[float]:
    c, op, token = stack.client, stack.operator, stack.contracts.token
    out = []
    for i in range(n):
        fn = token.functions.mint(op.address, 1, op_key(f"lat-{estimate}-{i}"))
        t = time.perf_counter()
        if estimate:
            c.gas_limit = int(c._rpc(lambda f=fn: f.estimate_gas({"from": op.address})) * 1.25)
        c.transact(fn, op)
        out.append((time.perf_counter() - t) * 1000)
    c.gas_limit = 3_000_000
    return out


def _lifecycles(stack: ChainStack, n: int, tag: str) -> float:
    stack.escrow.mint("renter", 10**6 * ONE_TOKEN, f"faucet-{tag}")
    rid = stack.market.register_resource("prov", "RTX4090", 16, 64, 500, 10 * ONE_TOKEN)
    run_lifecycle(stack, f"warm-{tag}", "renter", rid, "prov", 3600, 2700)  # labels, approvals, gas
    t = time.perf_counter()
    for i in range(n):
        run_lifecycle(stack, f"{tag}-{i}", "renter", rid, "prov", 3600, 2700)
    return n / (time.perf_counter() - t)


def _settlement(stack: ChainStack, resources: int) -> None:
    stack.escrow.mint("gas-renter", 10**6 * ONE_TOKEN, "gas-faucet")
    (rid,) = register_many(stack, "gas-prov", 1, 10 * ONE_TOKEN)
    settlement_gas(stack, "gas-renter", "gas-prov", rid, "gas-warm")  # first writes of every slot
    one = settlement_gas(stack, "gas-renter", "gas-prov", rid, "gas-one")
    register_many(stack, "gas-prov", resources - 1, 10 * ONE_TOKEN)
    many = settlement_gas(stack, "gas-renter", "gas-prov", rid, "gas-many")
    for path in PATHS:
        emit("chain", f"settle_gas_{path}", many[path], "gas", baseline=one[path],
             baseline_is="the same provider listing 1 resource", resources=resources)


def _start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"])
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("anvil did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description="chain client figures")
    parser.add_argument("--resources", type=int, default=4000,
                        help="resources the provider lists for the settlement-gas figures")
    args = parser.parse_args()
    local = _stack(None)
    fast = _tx_latency(local, 20, estimate=False)
    slow = _tx_latency(local, 20, estimate=True)
    emit("chain", "tx_latency_p50_in_process", percentile(fast, 50), "ms", baseline=percentile(slow, 50),
         baseline_is="web3 estimate_gas before each send", samples=len(fast))
    in_process = _lifecycles(local, 10, "local")
    note("in-process lifecycles done; starting anvil")
    proc, url = _start_anvil()
    try:
        anvil = _stack(url)
        fast_a = _tx_latency(anvil, 20, estimate=False)
        slow_a = _tx_latency(anvil, 20, estimate=True)
        emit("chain", "tx_latency_p50_anvil", percentile(fast_a, 50), "ms", baseline=percentile(slow_a, 50),
             baseline_is="web3 estimate_gas before each send", samples=len(fast_a))
        on_anvil = _lifecycles(anvil, 20, "anvil")
        _settlement(anvil, args.resources)
    finally:
        proc.terminate()
        proc.wait()
    emit("chain", "lifecycles_per_s_anvil", on_anvil, "jobs/s", baseline=in_process,
         baseline_is="in-process py-evm", steps="create+accept+start+complete")
    emit("chain", "lifecycles_per_s_in_process", in_process, "jobs/s")


if __name__ == "__main__":
    main()
