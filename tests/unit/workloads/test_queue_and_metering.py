from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.workloads.metering import PriceTable, canonical_gpu_model, cost_micro_usd, run_ms
from hcp.workloads.queue import PriorityQueues
from hcp.workloads.types import Workload, WorkloadState, WorkloadType

from .helpers import T0


def _w(seq: int, priority: int) -> Workload:
    return Workload(id=f"w{seq}", owner="o", type=WorkloadType.BATCH, priority=priority,
                    state=WorkloadState.QUEUED, requirements={}, sla={}, interruptible=True,
                    duration_seconds=60, created_at=T0, seq=seq)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10), max_size=60), st.data())
def test_serving_order_is_priority_then_fifo(prios: list[int], data: st.DataObject) -> None:
    q = PriorityQueues()
    items = [_w(i, p) for i, p in enumerate(prios)]
    for w in items:
        q.push(w)
    gone = set(data.draw(st.sets(st.sampled_from([w.id for w in items]))) if items else set())
    for w in items:
        if w.id in gone:
            assert q.remove(w)
            assert not q.remove(w)
    left = [w for w in items if w.id not in gone]
    assert [w.id for w in q] == [w.id for w in sorted(left, key=lambda w: (-w.priority, w.seq))]
    assert len(q) == len(left)


def test_requeued_workload_keeps_its_admission_place() -> None:
    q = PriorityQueues()
    a, b, c = _w(1, 5), _w(2, 5), _w(3, 5)
    for w in (a, b, c):
        q.push(w)
    q.remove(a)
    q.push(a)  # preempted and requeued: ahead of later admissions again
    q.push(a)  # pushing twice is a no-op
    assert [w.id for w in q] == ["w1", "w2", "w3"] and len(q) == 3
    assert q.depth_by_priority() == {5: 3}


def test_cost_arithmetic_examples() -> None:
    assert cost_micro_usd(3_600_000, 3_540_000) == 3_540_000  # one H100-hour
    assert cost_micro_usd(1_000, 3_600_000) == 1_000  # one second at $3.60/h = $0.001
    assert cost_micro_usd(999, 1_000) == 0  # rounds down: never over-bills
    assert cost_micro_usd(0, 10**9) == 0
    with pytest.raises(ValueError):
        cost_micro_usd(-1, 100)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**10), st.integers(0, 10**10), st.integers(0, 10**8))
def test_cost_is_exact_floor_and_subadditive(a: int, b: int, price: int) -> None:
    c = cost_micro_usd(a, price)
    assert isinstance(c, int)
    assert c * 3_600_000 <= a * price < (c + 1) * 3_600_000
    # Metering per segment never bills more than metering the total at once, and at most 1 less.
    whole = cost_micro_usd(a + b, price)
    parts = cost_micro_usd(a, price) + cost_micro_usd(b, price)
    assert whole - 1 <= parts <= whole


def test_run_ms() -> None:
    from datetime import timedelta

    assert run_ms(T0, T0 + timedelta(seconds=1.2345)) == 1234
    assert run_ms(T0 + timedelta(seconds=5), T0) == 0


def test_price_table_matches_model_spellings() -> None:
    t = PriceTable.of({"H100": 3_540_000, "RTX 4090": 540_000}, default=7)
    assert t.price_for("NVIDIA H100") == t.price_for("h100-sxm") == 3_540_000
    assert t.price_for("GeForce RTX 4090") == 540_000
    assert t.price_for("B200") == 7 and t.price_for(None) == 7
    assert canonical_gpu_model("nvidia l40s") == "L40S"
