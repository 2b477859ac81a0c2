"""The router actor over the local fleet's real GPU actors and a real store (SQLite file)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import ray

from actors.fleet import FleetHandles
from actors.gpu import GpuActor
from actors.options import gpu_actor_options, router_actor_options
from actors.router import RouterActor, find_router, launch_router
from hcp.config import DEFAULT_FLEET_SPEC, Settings
from hcp.errors import (
    GpuBusyError,
    InvalidWorkloadError,
    RouterUnavailableError,
    ValidationError,
    WorkloadNotFoundError,
    WorkloadTransitionError,
)
from hcp.fleet.modes import GpuMode, SwitchRequest
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import load_fleet_spec
from hcp.store import connect, migrate
from hcp.workloads.metering import PriceTable, cost_micro_usd
from hcp.workloads.repository import WorkloadRepository
from tests.waiting import wait_until

_wait = wait_until


def _v(x: Any) -> Any:
    """The router's typed answers as the JSON views the API shows (what these checks read)."""
    from dataclasses import asdict

    from hcp.workloads.types import Admission, RouterStats, UsageTotals, Workload, WorkloadPage

    if isinstance(x, list):
        return [_v(i) for i in x]
    if isinstance(x, Admission):
        return {**x.workload.view(), "replayed": x.replayed}
    if isinstance(x, Workload):
        return x.view()
    if isinstance(x, WorkloadPage):
        return {"items": [w.view() for w in x.items], "next_cursor": x.next_cursor}
    if isinstance(x, (UsageTotals,)):
        return x.to_dict()
    if isinstance(x, RouterStats):
        return asdict(x)
    return x


def _call(handle: Any, method: str, *args: Any) -> Any:
    return _v(ray.get(getattr(handle, method).remote(*args)))


@pytest.fixture(scope="module")
def fleet(ray_session, tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("router")
    spec = load_fleet_spec(DEFAULT_FLEET_SPEC)
    settings = Settings(home=tmp, database_url=f"sqlite:///{tmp / 'hcp.db'}",
                        ray_namespace=f"hcp-test-{tmp.name}", checkpoint_seconds=1.0,
                        mining_cpu_share=0.1, router_tick_seconds=0.1)
    repo = FleetRepository(connect(settings.resolved_database_url))
    migrate(repo.engine)
    repo.sync_fleet(spec)
    gpus = {g.id: GpuActor.options(**gpu_actor_options(g, settings)).remote(g, settings)
            for g in spec.gpus()}
    ray.get([h.status.remote() for h in gpus.values()], timeout=180)
    yield settings, gpus, repo
    for h in gpus.values():
        ray.kill(h, no_restart=True)


@pytest.fixture(scope="module")
def _router(fleet):  # type: ignore[no-untyped-def]
    settings, gpus, _repo = fleet
    handle = launch_router(FleetHandles(gpus=gpus), settings)
    yield handle
    ray.kill(handle, no_restart=True)
    _wait(lambda: _gone(settings), timeout=30)


@pytest.fixture
def router(fleet, _router):  # type: ignore[no-untyped-def]
    """The shared router with nothing active and every GPU mining."""
    settings, gpus, repo = fleet
    # Queued work first: a GPU freed by cancelling running work would otherwise take it.
    for _ in range(5):
        left = [v for state in ("queued", "scheduled", "running")
                for v in _call(_router, "list", None, state, 500)["items"]]
        if not left:
            break
        for v in left:
            with contextlib.suppress(WorkloadTransitionError):  # finished meanwhile
                _call(_router, "cancel", v["id"])
    ray.get([h.switch.remote(SwitchRequest(i, GpuMode.MINING, "test setup")) for i, h in gpus.items()])
    return _router, settings, gpus, repo


def _gone(settings: Settings) -> bool:
    try:
        find_router(settings)
    except RouterUnavailableError:
        return True
    return False


def _state(handle, wid: str) -> dict:  # type: ignore[no-untyped-def]
    return _call(handle, "get", wid)


def test_real_time_workload_preempts_mining_and_normal_work_waits(router) -> None:  # type: ignore[no-untyped-def]
    handle, settings, gpus, repo = router
    assert find_router(settings)._actor_id == handle._actor_id
    normal = _call(handle, "submit", "alice", {"type": "batch", "priority": 5,
                                                     "duration_seconds": 3600})
    rt = _call(handle, "submit", "bob", {"type": "inference", "priority": 9,
                                               "requirements": {"gpu_model": "H100"},
                                               "duration_seconds": 3600})
    assert rt["state"] == "queued" and rt["owner"] == "bob"
    running = _wait(lambda: (v := _state(handle, rt["id"]))["state"] == "running" and v)
    assert running["device_id"] == "lab-gpu-0" and running["preempted_mining"] is True
    assert ray.get(gpus["lab-gpu-0"].status.remote()).mode == "INFERENCE"
    # Every GPU left is mining: the priority-5 workload must not preempt it.
    time.sleep(1.0)
    assert _state(handle, normal["id"])["state"] == "queued"
    assert ray.get(gpus["lab-gpu-1"].status.remote()).mode == "MINING"

    ev = [e for e in reversed(repo.events(kind="workload", limit=50))
          if e.payload["workload_id"] == rt["id"]]
    assert [e.payload["state"] for e in ev] == ["queued", "scheduled", "running"]
    switch = repo.events(device_id="lab-gpu-0", kind="mode_change")[0]
    assert (switch.from_mode, switch.to_mode) == ("MINING", "INFERENCE")
    assert rt["id"] in (switch.reason or "")

    done = _call(handle, "complete", rt["id"])
    assert done["state"] == "completed" and done["gpu_seconds"] > 0
    price = PriceTable.from_settings(settings).price_for("H100")
    assert done["cost_micro_usd"] == cost_micro_usd(round(done["gpu_seconds"] * 1000), price)
    released = repo.events(kind="gpu_released")[0]
    assert released.payload["workload_id"] == rt["id"] and released.device_id == "lab-gpu-0"
    # The GPU is left in INFERENCE for the optimizer; the waiting workload takes it.
    assert ray.get(gpus["lab-gpu-0"].status.remote()).mode == "INFERENCE"
    moved = _wait(lambda: (v := _state(handle, normal["id"]))["state"] == "running" and v)
    assert moved["device_id"] == "lab-gpu-0" and moved["preempted_mining"] is False
    with pytest.raises(WorkloadTransitionError):
        _call(handle, "cancel", rt["id"])
    with pytest.raises(WorkloadNotFoundError):
        _call(handle, "get", "no-such-id")


def test_duration_elapses_and_inference_gpu_is_acquired(router) -> None:  # type: ignore[no-untyped-def]
    handle, _settings, gpus, _repo = router
    w = _call(handle, "submit", "carol", {"type": "embedding", "priority": 10,
                                                "duration_seconds": 1})
    done = _wait(lambda: (v := _state(handle, w["id"]))["state"] == "completed" and v, timeout=30)
    assert 1.0 <= done["gpu_seconds"] < 5.0 and done["detail"] == "duration elapsed"
    device = _call(handle, "acquire_inference_gpu", "carol")
    assert ray.get(gpus[device].status.remote()).mode == "INFERENCE"
    usage = _call(handle, "usage", "carol")
    assert usage["by_type"]["embedding"]["cost_micro_usd"] == done["cost_micro_usd"]
    assert usage["gpu_seconds"] == done["gpu_seconds"]
    with pytest.raises(InvalidWorkloadError) as ei:
        _call(handle, "submit", "carol", {"type": "mining", "priority": 11})
    assert {p.split(":")[0] for p in ei.value.context["problems"]} == {"type", "priority"}


def test_batched_submissions_answer_each_item_and_sla_breaches_fail(router) -> None:  # type: ignore[no-untyped-def]
    handle, _settings, _gpus, repo = router
    # Two long non-interruptible jobs hold both GPUs (they preempt nothing: priority 5).
    ray.get([h.switch.remote(SwitchRequest(i, GpuMode.INFERENCE, "test")) for i, h in _gpus.items()])
    hold = _call(handle, "submit_batch",
        [("erin", {"type": "training", "priority": 5, "duration_seconds": 3600,
                   "interruptible": False}, None)] * 2)
    _wait(lambda: all(_state(handle, h["id"])["state"] == "running" for h in hold), timeout=30)
    patient_spec = {"type": "batch", "priority": 1, "duration_seconds": 5}
    answers = _call(handle, "submit_batch", [
        ("erin", {"type": "inference", "priority": 5, "duration_seconds": 5,
                  "sla": {"max_latency_ms": 500}}, None),
        ("erin", {"type": "inference", "priority": 42}, None),
        ("frank", patient_spec, "frank-retry-1"),
        ("frank", patient_spec, "frank-retry-1"),  # a retry in the same batch
    ])
    urgent, bad, patient, retry = answers
    assert isinstance(bad, InvalidWorkloadError)  # refused alone; the others were admitted
    assert urgent["state"] == patient["state"] == "queued" and patient["owner"] == "frank"
    assert retry["id"] == patient["id"] and retry["replayed"] and not patient["replayed"]
    later = _call(handle, "submit_batch", [("frank", patient_spec, "frank-retry-1")])[0]
    assert later["id"] == patient["id"] and later["replayed"]
    failed = _wait(lambda: (v := _state(handle, urgent["id"]))["state"] == "failed" and v,
                   timeout=30)
    assert failed["detail"].startswith("SLA breached: not started within")
    assert _state(handle, patient["id"])["state"] == "queued"
    store = WorkloadRepository(repo.engine)
    _wait(lambda: (w := store.get(urgent["id"])) is not None and w.state.value == "failed")


def test_router_restart_loses_nothing_and_meters_once(router) -> None:  # type: ignore[no-untyped-def]
    handle, settings, gpus, repo = router
    ray.get([h.switch.remote(SwitchRequest(i, GpuMode.INFERENCE, "test")) for i, h in gpus.items()])
    ids = [v["id"] for v in _call(handle, "submit_many",
        "dave", [{"type": "training", "priority": 1 + i % 10, "duration_seconds": 3600,
                  "interruptible": False} for i in range(12)])]
    running = _wait(lambda: [v for v in _call(handle, "list", "dave", "running")["items"]]
                    if len(_call(handle, "list", "dave", "running")["items"]) == 2 else None)
    before = {v["id"]: v for v in running}
    pid = _call(handle, "stats")["pid"]
    ray.kill(handle, no_restart=False)  # crash: Ray restarts it, it reloads from the store
    stats = _wait(lambda: (st := _stats_or_none(handle)) and st["pid"] != pid and st, timeout=60)
    assert stats["resumed"]["running"] == 2 and stats["resumed"]["queued"] == 10
    page = _call(handle, "list", "dave", None, 100)
    assert sorted(v["id"] for v in page["items"]) == sorted(ids) and page["next_cursor"] is None
    assert len(_call(handle, "list", "dave", None, 100, None, "training")["items"]) == 12
    assert _call(handle, "list", "dave", None, 100, None, "batch")["items"] == []
    with pytest.raises(ValidationError):
        _call(handle, "list", "dave", None, 10, "not-a-cursor")
    for wid, v in before.items():
        again = _state(handle, wid)
        assert (again["state"], again["device_id"], again["started_at"]) == (
            "running", v["device_id"], v["started_at"])
    time.sleep(0.5)
    finished = [_call(handle, "complete", wid) for wid in before]
    prices = PriceTable.from_settings(settings)
    models = {g.device_id: g.model for g in WorkloadRepository(repo.engine).gpu_inventory()}
    for f in finished:
        ms = round(f["gpu_seconds"] * 1000)
        assert f["cost_micro_usd"] == cost_micro_usd(ms, prices.price_for(models[f["device_id"]]))
    usage = _call(handle, "usage", "dave")
    assert usage["cost_micro_usd"] == sum(f["cost_micro_usd"] for f in finished)
    assert usage["by_type"]["training"]["workloads"] == 2
    with repo.engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT COUNT(*), COUNT(DISTINCT id) FROM workloads "
                                 "WHERE owner = 'dave'").one()
    assert tuple(n) == (12, 12)


def test_a_power_cap_preemption_requeues_the_workload_and_frees_its_gpu(router) -> None:  # type: ignore[no-untyped-def]
    handle, _settings, gpus, repo = router
    w = _call(handle, "submit", "gina", {"type": "training", "priority": 9, "duration_seconds": 3600,
                                         "interruptible": False})
    running = _wait(lambda: (v := _state(handle, w["id"]))["state"] == "running" and v)
    device = running["device_id"]
    assert ray.get(gpus[device].status.remote()).held_by == f"workload:{w['id']}"
    # An operator's (or the optimizer's) plain switch is refused while the workload holds it.
    with pytest.raises(GpuBusyError):
        _v(ray.get(gpus[device].switch.remote(SwitchRequest(device, GpuMode.MINING, "operator"))))
    assert not ray.get(handle.preempt.remote(device, "someone-else", "cap"))
    assert ray.get(handle.preempt.remote(device, w["id"], "facility lab power cap"))
    ev = [e.payload for e in reversed(repo.events(kind="workload", limit=100))
          if e.payload["workload_id"] == w["id"]]
    assert [e["state"] for e in ev][:4] == ["queued", "scheduled", "running", "queued"]
    _call(handle, "cancel", w["id"])
    assert ray.get(gpus[device].status.remote()).held_by is None


def _stats_or_none(handle):  # type: ignore[no-untyped-def]
    try:
        return _v(ray.get(handle.stats.remote(), timeout=5))
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return None


def test_router_options_come_from_the_factory(fleet) -> None:  # type: ignore[no-untyped-def]
    settings, _gpus, _repo = fleet
    opts = router_actor_options(settings)
    assert opts["name"] == "router" and opts["namespace"] == settings.ray.namespace
    assert opts["max_task_retries"] == 0 and RouterActor is not None
