"""The live feed over a log whose ids commit out of order (PostgreSQL): nothing is lost,
nothing is sent twice, and the resume cursor never passes an event not yet sent."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from serve_apps.live import LiveCursor, LiveHub


class Log:
    """Ids are handed out at 'begin' and become visible at 'commit' (or never: rollback)."""

    def __init__(self) -> None:
        self.next_id = 1
        self.visible: dict[int, dict[str, Any]] = {}

    def begin(self) -> int:
        i, self.next_id = self.next_id, self.next_id + 1
        return i

    def commit(self, i: int, kind: str = "workload") -> None:
        self.visible[i] = {"id": i, "kind": kind, "payload": {}}

    # -- EventFeed --------------------------------------------------------------------
    def _live(self, ids: list[int]) -> list[dict[str, Any]]:
        return [self.visible[i] for i in ids if self.visible[i]["kind"] == "workload"]

    def after(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        return self._live(sorted(i for i in self.visible if i > after_id))[:limit]

    def scan(self, after_id: int, limit: int) -> tuple[list[dict[str, Any]], list[int]]:
        ids = sorted(i for i in self.visible if i > after_id)[:limit]
        return self._live(ids), ids

    def by_ids(self, ids: list[int]) -> tuple[list[dict[str, Any]], list[int]]:
        found = sorted(i for i in ids if i in self.visible)
        return self._live(found), found

    def last_id(self) -> int:
        return max(self.visible, default=0)


def test_an_event_committed_after_a_higher_id_is_still_sent() -> None:
    log = Log()
    hub = LiveHub(log, poll_s=0.01, gap_timeout_s=3600)

    async def run() -> None:
        await hub.ensure_started()
        watcher = LiveCursor(hub, None)
        slow, fast = log.begin(), log.begin()  # 1 starts first, 2 commits first
        log.commit(fast)
        await hub.poll_once()
        assert [e["id"] for e in await watcher.next(0)] == [2]
        assert watcher.cursor == 0  # 1 may still come: resuming must not skip it
        log.commit(slow)
        await hub.poll_once()
        assert [e["id"] for e in await watcher.next(0)] == [1]
        assert watcher.cursor == 2
        # A client resuming from the earlier cursor gets both, once each.
        again = LiveCursor(hub, 0)
        assert sorted(e["id"] for e in await again.next(0)) == [1, 2]
        assert await again.next(0) == [] and again.cursor == 2

    asyncio.run(run())


def test_a_rolled_back_id_stops_holding_the_cursor_after_the_timeout() -> None:
    log = Log()
    hub = LiveHub(log, poll_s=0.01, gap_timeout_s=0.0)

    async def run() -> None:
        await hub.ensure_started()
        watcher = LiveCursor(hub, None)
        log.begin()  # rolled back: never visible
        log.commit(log.begin())
        await hub.poll_once()
        assert [e["id"] for e in await watcher.next(0)] == [2]
        await hub.poll_once()  # the gap expired
        assert await watcher.next(0) == [] and watcher.cursor == 2

    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), buffer=st.integers(2, 50),
       resume_every=st.integers(3, 40))
def test_random_commit_orders_lose_and_repeat_nothing(seed: int, n: int, buffer: int,
                                                      resume_every: int) -> None:
    rnd = random.Random(seed)
    log = Log()
    hub = LiveHub(log, poll_s=0.01, buffer=buffer, batch=7, gap_timeout_s=3600)

    async def run() -> None:
        await hub.ensure_started()
        watcher = LiveCursor(hub, None)
        got: list[int] = []
        open_: list[int] = []
        committed: set[int] = set()
        step = 0
        while len(committed) < n or open_:
            if log.next_id <= n and (not open_ or rnd.random() < 0.6):
                open_.append(log.begin())
            else:
                i = open_.pop(rnd.randrange(len(open_)))
                kind = "workload" if rnd.random() < 0.8 else "other"
                log.commit(i, kind)
                committed.add(i)
            if rnd.random() < 0.5:
                await hub.poll_once()
                got += [e["id"] for e in await watcher.next(0)]
            step += 1
            if step % resume_every == 0:  # the client reconnects from its last cursor
                watcher = LiveCursor(hub, watcher.cursor)
                got = [i for i in got if i <= watcher.cursor]
        for _ in range(n // 7 + 3):
            await hub.poll_once()
            got += [e["id"] for e in await watcher.next(0)]
        live = sorted(i for i in committed if log.visible[i]["kind"] == "workload")
        assert sorted(got) == live  # everything, once, even across reconnects
        assert watcher.cursor == n

    asyncio.run(run())


def test_postgres_transactions_committing_out_of_order_are_all_delivered() -> None:
    """Real PostgreSQL: the event log's id is taken at insert, visible at commit."""
    from sqlalchemy.orm import Session

    from hcp.clock import utcnow
    from hcp.store import models as m
    from hcp.store.db import connect, migrate
    from serve_apps.eventlog import StoreEventFeed
    from tests.conftest import fresh_postgres_database

    def event(owner: str) -> m.Event:
        return m.Event(at=utcnow(), kind="workload", payload={"owner": owner, "state": "queued",
                                                               "workload_id": owner})

    with fresh_postgres_database() as url:
        engine = connect(url)
        migrate(engine)
        hub = LiveHub(StoreEventFeed(engine), poll_s=0.01, gap_timeout_s=3600)

        async def run() -> None:
            await hub.ensure_started()
            watcher = LiveCursor(hub, None)
            with Session(engine) as slow:
                slow.add(event("slow"))
                slow.flush()  # takes its id now, commits later
                with Session(engine) as fast:
                    fast.add(event("fast"))
                    fast.commit()
                await hub.poll_once()
                first = await watcher.next(0)
                assert [e["payload"]["owner"] for e in first] == ["fast"]
                assert watcher.cursor < first[0]["id"]  # the slow one's id is still ahead
                slow.commit()
            await hub.poll_once()
            second = await watcher.next(0)
            assert [e["payload"]["owner"] for e in second] == ["slow"]
            assert second[0]["id"] < first[0]["id"] and watcher.cursor == first[0]["id"]

        asyncio.run(run())
        engine.dispose()
