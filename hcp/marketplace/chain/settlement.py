"""The gas of every way a job settles, measured for a provider that lists many resources.

Settling must cost the same whether the provider lists one resource or thousands
(docs/chain.md, "Bounded settlement"): the anvil test and ``bench.chain`` measure it here.
"""

from __future__ import annotations

import logging

from eth_abi import encode
from eth_utils import keccak

from hcp.marketplace.chain.ids import job_key
from hcp.marketplace.chain.market import NO_USAGE, Outcome
from hcp.marketplace.chain.stack import ChainStack

log = logging.getLogger(__name__)

PATHS = ("complete", "stop", "provider_fault", "user_fault", "inconclusive", "cancel")
_BATCH = 500
_IMAGE = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def register_many(stack: ChainStack, provider: str, count: int, price_per_hour: int,
                  gpu_model: str = "RTX4090") -> list[str]:
    """Register ``count`` resources for ``provider`` in pipelined batches; their ids."""
    signer = stack.escrow.sender(provider)
    registry = stack.contracts.registry
    first = stack.client.call(registry.functions.registrationNonce(signer.address))
    fn = registry.functions.registerResource(gpu_model, 16, 64, 500, price_per_hour)
    if stack.client.in_process:
        for start in range(0, count, _BATCH):
            stack.client.transact_batch([fn] * min(_BATCH, count - start), signer)
    else:
        stack.client.transact_bulk(fn, signer.address, count)
    return ["0x" + keccak(encode(["address", "uint256"], [signer.address, first + i])).hex()
            for i in range(count)]


def settlement_gas(stack: ChainStack, renter: str, provider: str, resource_id: str,
                   tag: str, estimated_seconds: int = 3600, run_seconds: int = 2700) -> dict[str, int]:
    """Gas used by the settling transaction of each path in ``PATHS`` (one job each).

    The renter must hold enough for six jobs of ``estimated_seconds`` on ``resource_id``.
    """
    m, c, mk = stack.market, stack.client, stack.contracts.marketplace
    gas: dict[str, int] = {}
    for path in PATHS:
        job = f"{tag}-{path}"
        m.create_job(job, renter, resource_id, _IMAGE, estimated_seconds)
        key = job_key(job)
        if path == "cancel":
            gas[path] = c.transact(mk.functions.cancelJob(key), stack.escrow.sender(renter)).gas_used
            continue
        m.accept(job, provider)
        m.start(job, provider)
        # A fixed run time: billed amounts (and so the transfers a path makes) are the same
        # in every round, whatever second each block happens to fall in.
        c.set_next_block_timestamp(m.job(job).start_time + run_seconds)
        if path == "complete":
            gas[path] = c.transact(mk.functions.completeJob(key, NO_USAGE),
                                   stack.escrow.sender(provider)).gas_used
            continue
        if path == "stop":
            gas[path] = c.transact(mk.functions.stopJob(key), stack.escrow.sender(renter)).gas_used
            continue
        m.dispute(job, renter, "benchmark")
        outcome = {"provider_fault": Outcome.PROVIDER_FAULT, "user_fault": Outcome.USER_FAULT,
                   "inconclusive": Outcome.INCONCLUSIVE}[path]
        gas[path] = c.transact(mk.functions.resolveDispute(key, int(outcome)), stack.operator).gas_used
    log.debug("settlement gas for %s: %s", resource_id, gas)
    return gas
