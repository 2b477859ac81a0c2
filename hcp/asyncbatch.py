"""Natural batching of concurrent async calls into one call that takes a list.

The first call goes out at once, alone; calls that arrive while a batch is in flight wait
and leave together as the next batch when it returns. An idle caller therefore pays no
batching delay, and a busy one pays one round trip per batch instead of one per call:
the batch size adapts to the load by itself (group commit, as databases do it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

I = TypeVar("I")
R = TypeVar("R")  # result

# ``send`` answers each item with its result or with the exception that refused it alone;
# an exception raised by ``send`` itself refuses the whole batch.
SendBatch = Callable[[list[I]], Awaitable[list[R | BaseException]]]


class NaturalBatcher(Generic[I, R]):
    def __init__(self, send: SendBatch[I, R], max_batch: int = 256, max_inflight: int = 1) -> None:
        if max_batch < 1 or max_inflight < 1:
            raise ValueError("max_batch and max_inflight must be at least 1")
        self._send = send
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._inflight = 0
        self.batches = 0
        self.items = 0

    async def submit(self, item: I) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, fut))
        if self._inflight < self.max_inflight:
            self._launch()
        return await fut

    def _launch(self) -> None:
        batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        if not batch:
            return
        self._inflight += 1
        self.batches += 1
        self.items += len(batch)
        task = asyncio.ensure_future(self._run(batch))
        task.add_done_callback(self._done)

    async def _run(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._send([item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} got {len(answers)} answers")
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, fut), answer in zip(batch, answers):
            if fut.done():  # the caller gave up (cancelled); the item was still sent
                continue
            if isinstance(answer, BaseException):
                fut.set_exception(answer)
            else:
                fut.set_result(answer)

    def _done(self, _task: asyncio.Future[None]) -> None:
        self._inflight -= 1
        while self._waiting and self._inflight < self.max_inflight:
            self._launch()
