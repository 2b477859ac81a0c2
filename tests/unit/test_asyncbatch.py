"""Natural batching: no delay alone, one call per batch under load, per-item errors."""

from __future__ import annotations

import asyncio

import pytest

from hcp.asyncbatch import NaturalBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_batch = False

    async def send(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_batch:
            raise ConnectionError("router gone")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


def test_a_lone_call_goes_out_at_once() -> None:
    rec = Recorder()
    b = NaturalBatcher(rec.send)
    assert asyncio.run(b.submit(3)) == 30
    assert rec.batches == [[3]]


def test_calls_arriving_during_a_batch_leave_together() -> None:
    rec = Recorder()
    b = NaturalBatcher(rec.send, max_batch=4)

    async def run() -> list[int | BaseException]:
        rec.gate = asyncio.Event()
        first = asyncio.ensure_future(b.submit(1))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(b.submit(i)) for i in (2, -3, 4, 5, 6)]
        await asyncio.sleep(0)
        assert rec.batches == [[1]]  # the others wait for the batch in flight
        rec.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    out = asyncio.run(run())
    assert out[0] == 10 and out[1] == 20 and out[3:] == [40, 50, 60]
    assert isinstance(out[2], ValueError) and str(out[2]) == "bad -3"  # refused alone
    assert rec.batches == [[1], [2, -3, 4, 5], [6]]  # at most max_batch per call
    assert b.batches == 3 and b.items == 6


def test_a_failed_send_refuses_its_whole_batch_only() -> None:
    rec = Recorder()
    b = NaturalBatcher(rec.send)

    async def run() -> None:
        rec.fail_batch = True
        with pytest.raises(ConnectionError):
            await b.submit(1)
        rec.fail_batch = False
        assert await b.submit(2) == 20

    asyncio.run(run())


def test_answer_count_must_match() -> None:
    async def short(items: list[int]) -> list[int | BaseException]:
        return []

    with pytest.raises(RuntimeError, match="got 0 answers"):
        asyncio.run(NaturalBatcher(short).submit(1))
