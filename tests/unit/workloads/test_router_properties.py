"""Random operation sequences against the router core: its invariants hold after every step."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import WorkloadTransitionError
from hcp.workloads.metering import PriceTable, cost_micro_usd
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.scoring import Action, choose
from hcp.workloads.types import WorkloadState

from .helpers import FakeClock, gpu

S = WorkloadState
PRICES = {"H100": 3_540_000, "L4": 800_000}
MODELS = {"g0": "H100", "g1": "H100", "g2": "L4"}

op = st.one_of(
    st.tuples(st.just("admit"), st.integers(1, 10), st.booleans(), st.integers(1, 20)),
    st.tuples(st.just("tick"), st.floats(0.001, 8.0)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("complete"), st.integers(0, 50), st.booleans()),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, max_size=60), st.lists(st.sampled_from(["MINING", "IDLE", "INFERENCE", "CURTAILED"]),
                                          min_size=3, max_size=3))
def test_router_invariants(ops, modes) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    ids = (f"w{i}" for i in itertools.count())
    r = WorkloadRouter(None, PriceTable.of(PRICES, 0), clock, gpu_models=MODELS, new_id=lambda: next(ids))
    gpu_modes = dict(zip(MODELS, modes))
    seen: list[str] = []
    segments: dict[str, list[int]] = {}  # workload -> the ms of each finished run segment
    started_at: dict[str, object] = {}

    def end_segment(wid: str) -> None:
        w = r.get(wid)
        if w.state is S.RUNNING:
            ms = (clock.now() - started_at.pop(wid)) // __import__("datetime").timedelta(milliseconds=1)
            segments.setdefault(wid, []).append((ms, MODELS[w.device_id]))

    for o in ops:
        if o[0] == "admit":
            w = r.admit("o", {"type": "batch", "priority": o[1], "interruptible": o[2],
                              "duration_seconds": o[3]})
            seen.append(w.id)
        elif o[0] == "tick":
            clock.advance(o[1])
            for wid in r.expired():
                end_segment(wid)
                r.complete(wid, True, "duration elapsed")
            views = [gpu(d, gpu_modes[d], model=MODELS[d], memory_gb=80 if MODELS[d] == "H100" else 24)
                     for d in MODELS]
            bumped = set()
            for p in r.plan(views):
                w = r.get(p.workload_id)
                assert p.action is not Action.PREEMPT_MINING or w.real_time
                if p.victim_id:
                    victim = r.get(p.victim_id)
                    assert victim.interruptible and victim.priority < w.priority
                    end_segment(p.victim_id)
                    r.requeue(p.victim_id, "preempted")
                    bumped.add(p.victim_id)
                r.mark_scheduled(w.id, p.device_id, p.action is Action.PREEMPT_MINING)
                gpu_modes[p.device_id] = "INFERENCE"
                r.mark_running(w.id)
                started_at[w.id] = clock.now()
            # Complete: nothing still queued could have been placed (the early stop skips nothing).
            after = [replace(v, mode=gpu_modes[v.device_id], busy_with=r.assigned.get(v.device_id))
                     for v in views]
            for w in r.queues:
                # (a victim requeued in this pass is only considered by the next pass)
                if w.id not in bumped:
                    assert choose(w, after, r.running()) is None, w
        elif seen:
            wid = seen[o[1] % len(seen)]
            w = r.get(wid)
            if w.state.terminal:
                continue
            if o[0] == "complete" and o[2] and w.state is not S.RUNNING:
                with pytest.raises(WorkloadTransitionError):  # only running work can succeed
                    r.complete(wid, True)
                continue
            end_segment(wid)
            if o[0] == "cancel":
                r.cancel(wid)
            else:
                r.complete(wid, o[2])

        # -- invariants --
        holders = list(r.assigned.values())
        assert len(holders) == len(set(holders))
        for d, wid in r.assigned.items():
            w = r.get(wid)
            assert w.state in (S.SCHEDULED, S.RUNNING) and w.device_id == d
            assert gpu_modes[d] != "CURTAILED"
        queued = {w.id for w in r.queues}
        assert queued == {wid for wid, w in r.active.items() if w.state is S.QUEUED}
        for wid in seen:
            w = r.get(wid)
            segs = segments.get(wid, [])
            assert w.gpu_ms == sum(ms for ms, _ in segs)
            assert w.cost_micro_usd == sum(cost_micro_usd(ms, PRICES[m]) for ms, m in segs)
            if w.state.terminal:
                assert wid not in r.active and wid not in queued
        order = [w for w in r.queues]
        assert order == sorted(order, key=lambda w: (-w.priority, w.seq))
