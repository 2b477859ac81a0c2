"""The same random operation sequences as the SQL ledger's, on the chain ledger
(``hcp.marketplace.chain.ChainEscrowBackend`` over py-evm in process): after every step the token's total
supply equals every holder's balance plus what PaymentEscrow holds (locked and staked),
and equals the model.

Chain calls cost far more than SQL ones, so the default is a few sequences; raise
HCP_CHAIN_LEDGER_EXAMPLES for a soak.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from hypothesis import HealthCheck, settings

from hcp.config import Settings
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.keys import KeyRing
from hcp.marketplace.chain.stack import ChainStack, open_chain
from tests.unit.marketplace.ledger_machine import make_machine

SEED = "stateful-ledger-seed-0123456789"
EXAMPLES = int(os.environ.get("HCP_CHAIN_LEDGER_EXAMPLES", "30"))
STEPS = int(os.environ.get("HCP_CHAIN_LEDGER_STEPS", "10"))


class ChainHarness:
    """One deployed chain for the whole test; each sequence uses its own accounts, job and op ids."""

    def __init__(self, stack: ChainStack) -> None:
        self.stack = stack
        # Accounts of this sequence alone: which operations the rules see refused (a lock over
        # a balance) must not depend on what earlier sequences left on the shared chain, or
        # Hypothesis cannot replay a sequence it found.
        self.job_prefix = uuid.uuid4().hex[:8] + "-"
        self.accounts = [f"{name}-{self.job_prefix[:-1]}" for name in ("alice", "bob", "carol")]

    def _fresh(self) -> ChainEscrowBackend:
        # Keys rebuilt from the seed and books read back from the chain: nothing carried over.
        s = self.stack
        return ChainEscrowBackend(s.client, s.contracts, KeyRing(SEED.encode()), s.operator,
                                  s.escrow.platform_account)

    def backend(self) -> ChainEscrowBackend:
        return self._fresh()

    def restart(self) -> ChainEscrowBackend:
        # A killed actor: the new backend knows nothing but what the chain holds.
        return self._fresh()

    def faulty(self) -> None:
        return None  # reverted transactions are exercised by the refusal rules

    def advance(self, seconds: int) -> None:
        # The next block carries the later time (py-evm); mine it so "now" has moved.
        now = self.stack.client.get_block("latest")["timestamp"]
        self.stack.client.set_next_block_timestamp(now + seconds)
        self.stack.client.mine()

    def close(self) -> None:
        pass


def test_chain_ledger_books_always_balance(tmp_path: Path) -> None:
    stack = open_chain(Settings(home=tmp_path, chain_wallet_seed=SEED))
    machine = make_machine(lambda: ChainHarness(stack), use_faults=False)
    machine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                         suppress_health_check=list(HealthCheck))
    machine.TestCase().runTest()
