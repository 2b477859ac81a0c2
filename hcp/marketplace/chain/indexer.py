"""Follow the contracts' events into the relational store (pure: no Ray).

Each ``poll()`` (1) checks the block the cursor stands on is still on the chain, walking back
over the stored recent block hashes to the last common block and deleting everything indexed
above it when it is not (re-org); (2) reads the logs of the next range up to
``head - confirmations``; (3) in ONE database transaction inserts them (unique tx hash + log
index, so re-reading is harmless), updates the job projection, records block hashes and moves
the cursor. A crash anywhere leaves the cursor at the last committed batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import sessionmaker

from hcp.clock import utcnow
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.deploy import Contracts
from hcp.marketplace.chain.models import ChainBlock, ChainCursor, ChainEvent, ChainJob
from hcp.marketplace.chain.projection import apply_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    from_block: int
    to_block: int
    events: int
    orphaned: int  # rows deleted because their blocks left the chain


class ChainIndexer:
    def __init__(self, client: ChainClient, contracts: Contracts, engine: Engine, *,
                 confirmations: int = 0, reorg_window: int = 64, batch_blocks: int = 2000) -> None:
        self.client = client
        self.contracts = contracts
        self.engine = engine
        self.confirmations = confirmations
        self.reorg_window = reorg_window
        self.batch_blocks = batch_blocks
        d = contracts.deployment
        self.name = f"{d.chain_id}:{d.marketplace.lower()}"
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._names = {c.address: n for n, c in (("GPUToken", contracts.token),
                                                 ("ResourceRegistry", contracts.registry),
                                                 ("ReputationSystem", contracts.reputation),
                                                 ("PaymentEscrow", contracts.escrow),
                                                 ("Marketplace", contracts.marketplace))}
        self._events: dict[tuple[str, bytes], Any] = {}
        for addr, contract in contracts.by_address().items():
            for abi in contract.abi:
                if abi.get("type") == "event":
                    self._events[(addr, event_abi_to_log_topic(abi))] = contract.events[abi["name"]]()

    # -- public ----------------------------------------------------------------------------
    def cursor(self) -> tuple[int, str | None]:
        with self._session() as s:
            c = s.get(ChainCursor, self.name)
            return (c.last_block, c.last_hash) if c else (self.contracts.deployment.block - 1, None)

    def poll(self) -> PollResult:
        """Index one batch; returns what it did (call until ``to_block`` reaches the head)."""
        orphaned = self._handle_reorg()
        last, _ = self.cursor()
        target = self.client.block_number() - self.confirmations
        if target <= last:
            return PollResult(last + 1, last, 0, orphaned)
        start, end = last + 1, min(target, last + self.batch_blocks)
        end_block = self.client.get_block(end)
        logs = self.client.get_logs({"fromBlock": start, "toBlock": end,
                                     "address": list(self._names)})
        hashes = {end: end_block["hash"].to_0x_hex()}
        for lg in logs:
            hashes.setdefault(lg["blockNumber"], HexBytes(lg["blockHash"]).to_0x_hex())
        # Logs and block read at slightly different moments: if the chain moved under us,
        # drop the batch and let the next poll's re-org check sort it out.
        for number, h in hashes.items():
            if number != end and self.client.get_block(number)["hash"].to_0x_hex() != h:
                log.info("chain changed while reading blocks %d-%d; retrying", start, end)
                return PollResult(start, last, 0, orphaned)
        rows = [self._decode(lg) for lg in logs]
        with self._session.begin() as s:
            new = 0
            for row in rows:
                if row is None:
                    continue
                exists = s.scalar(select(ChainEvent.id).where(ChainEvent.tx_hash == row.tx_hash,
                                                              ChainEvent.log_index == row.log_index))
                if exists is not None:
                    continue  # already indexed before a crash or restart
                s.add(row)
                s.flush()
                apply_event(s, row)
                new += 1
            for number, h in hashes.items():
                s.merge(ChainBlock(cursor=self.name, number=number, hash=h))
            s.execute(delete(ChainBlock).where(ChainBlock.cursor == self.name,
                                               ChainBlock.number < end - self.reorg_window))
            s.merge(ChainCursor(name=self.name, last_block=end, last_hash=hashes[end], updated_at=utcnow()))
        return PollResult(start, end, new, orphaned)

    def run_until_head(self, max_polls: int = 1000) -> int:
        """Poll until caught up with ``head - confirmations``; returns events indexed."""
        total = 0
        for _ in range(max_polls):
            r = self.poll()
            total += r.events
            if r.to_block >= self.client.block_number() - self.confirmations:
                break
        return total

    # -- re-orgs ---------------------------------------------------------------------------
    def _handle_reorg(self) -> int:
        last, last_hash = self.cursor()
        if last_hash is None or self._hash_at(last) == last_hash:
            return 0
        with self._session() as s:
            stored = s.scalars(select(ChainBlock).where(ChainBlock.cursor == self.name)
                               .order_by(ChainBlock.number.desc())).all()
        fork = self.contracts.deployment.block - 1
        for b in stored:
            if self._hash_at(b.number) == b.hash:
                fork = b.number
                break
        else:
            if stored:
                log.warning("re-org deeper than the %d-block window; re-reading from block %d",
                            self.reorg_window, fork + 1)
        return self._rewind(fork)

    def _rewind(self, fork: int) -> int:
        with self._session.begin() as s:
            orphans = s.scalars(select(ChainEvent).where(ChainEvent.block_number > fork)).all()
            jobs = {e.job_key for e in orphans if e.job_key}
            s.execute(delete(ChainEvent).where(ChainEvent.block_number > fork))
            s.execute(delete(ChainBlock).where(ChainBlock.cursor == self.name, ChainBlock.number > fork))
            # Compensate the projection: rebuild each touched job from the events that remain.
            for key in jobs:
                s.execute(delete(ChainJob).where(ChainJob.job_key == key))
                s.flush()
                for e in s.scalars(select(ChainEvent).where(ChainEvent.job_key == key)
                                   .order_by(ChainEvent.block_number, ChainEvent.log_index)):
                    apply_event(s, e)
            fork_hash = s.scalar(select(ChainBlock.hash).where(ChainBlock.cursor == self.name,
                                                               ChainBlock.number == fork))
            s.merge(ChainCursor(name=self.name, last_block=fork, last_hash=fork_hash, updated_at=utcnow()))
        log.warning("re-org: dropped %d events above block %d (%d jobs rebuilt)", len(orphans), fork, len(jobs))
        return len(orphans)

    def _hash_at(self, number: int) -> str | None:
        if number > self.client.block_number():
            return None
        return self.client.get_block(number)["hash"].to_0x_hex()

    # -- decoding --------------------------------------------------------------------------
    def _decode(self, lg: Any) -> ChainEvent | None:
        topics = lg["topics"]
        if not topics:
            return None
        ev = self._events.get((lg["address"], bytes(topics[0])))
        if ev is None:
            return None
        decoded = ev.process_log(lg)
        args = {k: _jsonable(v) for k, v in decoded["args"].items()}
        job = args.get("jobId") if isinstance(args.get("jobId"), str) else None
        return ChainEvent(block_number=lg["blockNumber"], block_hash=HexBytes(lg["blockHash"]).to_0x_hex(),
                          tx_hash=HexBytes(lg["transactionHash"]).to_0x_hex(), log_index=lg["logIndex"],
                          contract=self._names[lg["address"]], event=decoded["event"], job_key=job,
                          args=args, indexed_at=utcnow())


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return str(v)  # uint256 does not fit JSON numbers everywhere
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v

