from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.workloads.scoring import Action, choose, fits, score
from hcp.workloads.types import Workload, WorkloadState, WorkloadType

from .helpers import T0, gpu


def _w(wid: str = "w", priority: int = 5, interruptible: bool = True, **req) -> Workload:  # type: ignore[no-untyped-def]
    return Workload(id=wid, owner="o", type=WorkloadType.INFERENCE, priority=priority,
                    state=WorkloadState.QUEUED, requirements=req, sla={}, interruptible=interruptible,
                    duration_seconds=60, created_at=T0, seq=1)


def test_fit_checks_model_spelling_and_memory() -> None:
    h100 = gpu("a", model="H100", memory_gb=80)
    assert fits({"gpu_model": "nvidia h100"}, h100)
    assert not fits({"gpu_model": "L40S"}, h100)
    assert fits({"min_memory_gb": 80}, h100) and not fits({"min_memory_gb": 81}, h100)
    assert fits({}, h100)


def test_score_prefers_cool_idle_local_and_tight() -> None:
    base = gpu("a", temperature_c=45, utilization=0.2, facility="x")
    assert score({}, gpu("b", temperature_c=35, utilization=0.2, facility="x")) > score({}, base)
    assert score({}, gpu("b", temperature_c=45, utilization=0.1, facility="x")) > score({}, base)
    assert score({"facility": "x"}, base) > score({"facility": "x"}, gpu("b", temperature_c=45,
                                                                          utilization=0.2, facility="y"))
    small, big = gpu("s", memory_gb=48), gpu("b", memory_gb=80)
    assert score({"min_memory_gb": 40}, small) > score({"min_memory_gb": 40}, big)


@settings(max_examples=100, deadline=None)
@given(st.floats(-20, 150), st.floats(-1, 2), st.sampled_from([None, "x", "y"]),
       st.one_of(st.none(), st.integers(1, 80)))
def test_score_is_bounded(temp: float, util: float, fac: str | None, mem: int | None) -> None:
    req = {"facility": fac, "min_memory_gb": mem}
    s = score(req, gpu("a", temperature_c=temp, utilization=util, facility="x", memory_gb=80))
    assert 0.0 <= s <= 100.0


def test_free_inference_gpu_beats_idle_and_mining_is_untouched_for_normal_work() -> None:
    gpus = [gpu("idle", "IDLE", temperature_c=30), gpu("inf", "INFERENCE", temperature_c=80),
            gpu("mine", "MINING")]
    p = choose(_w(), gpus, {})
    assert (p.device_id, p.action) == ("inf", Action.USE)
    p = choose(_w(), [g for g in gpus if g.device_id != "inf"], {})
    assert (p.device_id, p.action) == ("idle", Action.ACTIVATE)
    assert choose(_w(priority=7), [gpu("mine", "MINING")], {}) is None


def test_real_time_preempts_best_fitting_mining_gpu_never_curtailed() -> None:
    gpus = [gpu("hot", "MINING", temperature_c=85), gpu("cool", "MINING", temperature_c=40),
            gpu("cut", "CURTAILED", temperature_c=20), gpu("small", "MINING", model="L4", memory_gb=24)]
    p = choose(_w(priority=8, gpu_model="H100"), gpus, {})
    assert (p.device_id, p.action) == ("cool", Action.PREEMPT_MINING)
    assert choose(_w(priority=10), [gpu("cut", "CURTAILED")], {}) is None
    assert choose(_w(priority=10, gpu_model="A100"), gpus, {}) is None


def test_real_time_displaces_only_interruptible_lower_priority_work() -> None:
    low = _w("low", priority=3)
    fixed = _w("fixed", priority=2, interruptible=False)
    rt = _w("rt2", priority=9)
    running = {w.id: w for w in (low, fixed, rt)}
    gpus = [gpu("g1", "INFERENCE", busy_with="fixed"), gpu("g2", "INFERENCE", busy_with="low"),
            gpu("g3", "INFERENCE", busy_with="rt2")]
    p = choose(_w("new", priority=9), gpus, running)
    assert (p.device_id, p.action, p.victim_id) == ("g2", Action.PREEMPT_WORKLOAD, "low")
    # Nothing interruptible and lower: stays queued.
    assert choose(_w("new", priority=9), [gpus[0], gpus[2]], running) is None
    # A normal-priority workload never displaces anything.
    assert choose(_w("new", priority=7), gpus, running) is None
