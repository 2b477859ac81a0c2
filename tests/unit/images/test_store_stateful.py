"""A hypothesis state machine over the embedded store: adds, pins, unpins, job leases, GC and
raw block puts under a small cap. Whatever the order, a pinned or leased DAG stays readable
and the store never holds more than its cap."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from hcp.errors import BlockNotFoundError, StorageFullError
from hcp.images.params import ImportParams
from hcp.images.patterns import pattern_bytes
from tests.unit.images.conftest import ManualClock, make_store

CAP = 64 * 1024
PARAMS = [ImportParams(chunk_size=1024, max_links=4),
          ImportParams(chunk_size=1024, max_links=4, cid_version=1, raw_leaves=True)]


class StoreMachine(RuleBasedStateMachine):
    dags = Bundle("dags")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="hcp-img-sm-"))
        self.clock = ManualClock()
        self.store = make_store(self.tmp, cap=CAP, clock=self.clock)
        self.content: dict = {}
        self.pinned: set = set()
        self.leases: dict[str, set] = {}

    def teardown(self) -> None:
        self.store.engine.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(target=dags, seed=st.sampled_from("abcdefgh"), size=st.integers(0, 20_000),
          v=st.integers(0, 1), pin=st.booleans())
    def add(self, seed: str, size: int, v: int, pin: bool):  # type: ignore[no-untyped-def]
        data = pattern_bytes(seed, size)
        try:
            r = self.store.add([data], PARAMS[v], pin=pin)
        except StorageFullError:
            return None
        self.content[r.cid] = data
        if pin:
            self.pinned.add(r.cid)
        return r.cid

    @rule(cid=dags)
    def pin(self, cid) -> None:  # type: ignore[no-untyped-def]
        if cid is None:
            return
        try:
            self.store.pin(cid)
            self.pinned.add(cid)
        except BlockNotFoundError:
            pass  # blocks of an unheld DAG may have been evicted or collected

    @rule(cid=dags)
    def unpin(self, cid) -> None:  # type: ignore[no-untyped-def]
        if cid is None:
            return
        assert self.store.unpin(cid) == (cid in self.pinned)
        self.pinned.discard(cid)

    @rule(cid=dags, job=st.sampled_from(["j1", "j2", "j3"]))
    def lease(self, cid, job: str) -> None:  # type: ignore[no-untyped-def]
        if cid is None:
            return
        try:
            self.store.lease(job, cid)
            self.leases.setdefault(job, set()).add(cid)
        except BlockNotFoundError:
            pass

    @rule(job=st.sampled_from(["j1", "j2", "j3"]))
    def release(self, job: str) -> None:
        assert self.store.release(job) == len(self.leases.pop(job, set()))

    @rule()
    def gc(self) -> None:
        self.store.gc()

    @rule(data=st.binary(min_size=0, max_size=3000))
    def put_raw(self, data: bytes) -> None:
        try:
            self.store.put_block(data)
        except StorageFullError:
            pass

    @rule()
    def tick(self) -> None:
        self.clock.advance(seconds=1)

    @invariant()
    def held_dags_are_whole(self) -> None:
        held = set(self.pinned).union(*self.leases.values()) if self.leases else set(self.pinned)
        for cid in held:
            assert b"".join(self.store.cat(cid)) == self.content[cid]

    @invariant()
    def never_over_the_cap(self) -> None:
        on_disk = sum(size for _, size in self.store.files.scan())
        assert self.store.stat().used_bytes <= CAP and on_disk <= CAP
        assert on_disk == self.store.stat().used_bytes


StoreMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
TestStoreMachine = StoreMachine.TestCase
