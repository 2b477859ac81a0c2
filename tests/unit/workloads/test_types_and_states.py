from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import InvalidWorkloadError, WorkloadTransitionError
from hcp.workloads.router import parse_spec
from hcp.workloads.states import ALLOWED, can_transition, check_transition
from hcp.workloads.types import WorkloadSpec, WorkloadState, WorkloadType

S = WorkloadState


def test_spec_defaults_and_enums() -> None:
    s = parse_spec({"type": "embedding", "priority": 8})
    assert s.type is WorkloadType.EMBEDDING and s.real_time
    assert (s.interruptible, s.duration_seconds, s.name) == (True, 60, None)
    assert s.requirements.gpu_model is None and s.sla.max_latency_ms is None
    assert [st.value for st in WorkloadState] == [
        "queued", "scheduled", "running", "completed", "failed", "cancelled"]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-50, max_value=50))
def test_priority_range_is_enforced(p: int) -> None:
    if 1 <= p <= 10:
        assert parse_spec({"type": "batch", "priority": p}).priority == p
    else:
        with pytest.raises(InvalidWorkloadError) as ei:
            parse_spec({"type": "batch", "priority": p})
        assert ei.value.code == "invalid_workload"
        assert any(pr.startswith("priority") for pr in ei.value.context["problems"])


@pytest.mark.parametrize("body, where", [
    ({"type": "mining", "priority": 5}, "type"),
    ({"type": "batch", "priority": 5, "unknown": 1}, "unknown"),
    ({"type": "batch", "priority": 5, "requirements": {"min_memory_gb": 0}}, "requirements.min_memory_gb"),
    ({"type": "batch", "priority": 5, "requirements": {"cores": 4}}, "requirements.cores"),
    ({"type": "batch", "priority": 5, "sla": {"max_latency_ms": 0}}, "sla.max_latency_ms"),
    ({"type": "batch", "priority": 5, "duration_seconds": 7 * 86400 + 1}, "duration_seconds"),
    ({"type": "batch", "priority": 5, "name": "x" * 201}, "name"),
    ({"priority": 5}, "type"),
])
def test_bad_specs_name_the_field(body: dict, where: str) -> None:
    with pytest.raises(InvalidWorkloadError) as ei:
        parse_spec(body)
    assert any(p.startswith(where) for p in ei.value.context["problems"]), ei.value.context


def test_spec_object_passes_through() -> None:
    s = WorkloadSpec(type=WorkloadType.TRAINING, priority=3)
    assert parse_spec(s) is s


def test_transition_table() -> None:
    legal = {(a, b) for a, bs in ALLOWED.items() for b in bs}
    assert legal == {
        (S.QUEUED, S.SCHEDULED), (S.QUEUED, S.CANCELLED), (S.QUEUED, S.FAILED),
        (S.SCHEDULED, S.RUNNING), (S.SCHEDULED, S.QUEUED), (S.SCHEDULED, S.CANCELLED),
        (S.SCHEDULED, S.FAILED), (S.RUNNING, S.COMPLETED), (S.RUNNING, S.FAILED),
        (S.RUNNING, S.CANCELLED), (S.RUNNING, S.QUEUED),
    }


@pytest.mark.parametrize("src, dst", list(itertools.product(S, S)))
def test_check_transition_matches_table(src: WorkloadState, dst: WorkloadState) -> None:
    if can_transition(src, dst):
        check_transition("w1", src, dst)
        return
    with pytest.raises(WorkloadTransitionError) as ei:
        check_transition("w1", src, dst)
    assert ei.value.http_status == 409 and ei.value.code == "invalid_workload_transition"
    assert ei.value.context == {"workload_id": "w1", "state": src.value, "target": dst.value}
    if src.terminal:
        assert f"already {src.value}" in ei.value.detail
