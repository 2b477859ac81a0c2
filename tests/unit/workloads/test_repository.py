"""The workloads store on SQLite and PostgreSQL: batches, reload after a crash, pagination, usage."""

from __future__ import annotations

import itertools

import pytest

from hcp.errors import StoreError, WorkloadTransitionError
from hcp.fleet.repository import FleetRepository
from hcp.store import connect, migrate
from hcp.workloads.metering import PriceTable
from hcp.workloads.repository import WorkloadRepository
from hcp.workloads.router import WorkloadRouter
from hcp.workloads.scoring import Action
from hcp.workloads.types import WorkloadState, WorkloadType

from .helpers import FakeClock, gpu

S = WorkloadState


@pytest.fixture
def repo(database_url: str) -> WorkloadRepository:
    engine = connect(database_url)
    migrate(engine)
    return WorkloadRepository(engine)


def _router(repo: WorkloadRepository, clock: FakeClock, start: int = 1) -> WorkloadRouter:
    ids = (f"w{i:05d}" for i in itertools.count(start))
    r = WorkloadRouter(repo, PriceTable.of({"H100": 3_600_000}, 1_000), clock,
                       gpu_models={"g0": "H100", "g1": "L4"}, new_id=lambda: next(ids))
    r.resume()
    return r


def _run(r: WorkloadRouter, gpus) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for p in r.plan(gpus):
        r.mark_scheduled(p.workload_id, p.device_id, p.action is Action.PREEMPT_MINING)
        out.append(r.mark_running(p.workload_id).id)
    return out


def test_a_container_start_survives_a_router_restart_and_is_metered_once(
        repo: WorkloadRepository) -> None:
    """Placed, pulled for 20 s, started, then the router crashes: the new router meters from
    the stored container start and a repeated start moves nothing."""
    clock = FakeClock()
    r = _router(repo, clock)
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    w = r.admit("o1", {"type": "batch", "priority": 5, "duration_seconds": 60,
                       "container": {"image_cid": cid}})
    assert _run(r, [gpu("g0", "INFERENCE")]) == [w.id]
    r.flush()
    clock.advance(20)  # the image pull
    started = r.container_started(w.id).container_started_at
    r.flush()
    clock.advance(5)

    r2 = _router(repo, clock, start=100)  # "crash": the old router is dropped
    again = r2.get(w.id)
    assert again.container_started_at == started == again.started_at
    clock.advance(5)
    assert r2.container_started(w.id).container_started_at == started  # said again: no move
    done = r2.complete(w.id)
    r2.flush()
    assert (done.gpu_ms, done.cost_micro_usd) == (10_000, 10_000)  # 10 s of run, not 30 s
    assert repo.get(w.id).container_started_at == started


def test_crash_and_resume_loses_nothing_and_meters_once(repo: WorkloadRepository) -> None:
    clock = FakeClock()
    r = _router(repo, clock)
    ids = [r.admit(f"o{i % 3}", {"type": "batch", "priority": 1 + i % 10, "duration_seconds": 30}).id
           for i in range(25)]
    _run(r, [gpu("g0", "MINING"), gpu("g1", "IDLE", model="L4", memory_gb=24)])
    on = {d: w for d, w in r.assigned.items()}
    assert set(on) == {"g0", "g1"}
    clock.advance(2)
    r.complete(on["g1"])  # 2 s on the L4 at the default price: 2000 ms * 1000 / 3.6e6 -> 0
    r.flush()
    queued_before = [w.id for w in r.queues]
    clock.advance(8)

    # "Crash": a new router over the same store; the old object is simply dropped.
    r2 = _router(repo, clock, start=100)
    assert set(r2.active) == set(ids) - {on["g1"]}
    assert r2.get(on["g0"]).state is S.RUNNING and r2.assigned == {"g0": on["g0"]}
    assert [w.id for w in r2.queues] == queued_before
    clock.advance(20)
    assert r2.expired() == [on["g0"]]
    done = r2.complete(on["g0"])
    r2.flush()
    assert (done.gpu_ms, done.cost_micro_usd) == (30_000, 30_000)  # 30 s at $3.60/h, once
    assert repo.get(on["g0"]).cost_micro_usd == 30_000
    u = repo.usage()
    assert (u.gpu_ms, u.cost_micro_usd) == (32_000, 30_000)
    assert u.by_type[WorkloadType.BATCH].workloads == 2
    assert repo.count() == 25  # nothing duplicated
    # A third start still finds the finished one finished.
    r3 = _router(repo, clock, start=200)
    assert on["g0"] not in r3.active and len(r3.active) == 23
    with pytest.raises(WorkloadTransitionError):
        r3.cancel(on["g0"])


def test_scheduled_before_crash_is_requeued(repo: WorkloadRepository) -> None:
    clock = FakeClock()
    r = _router(repo, clock)
    w = r.admit("a", {"type": "inference", "priority": 9})
    p = r.plan([gpu("g0", "MINING")])[0]
    r.mark_scheduled(w.id, p.device_id, True)
    r.flush()
    r2 = _router(repo, clock, start=100)
    again = r2.get(w.id)
    assert again.state is S.QUEUED and again.device_id is None and r2.assigned == {}
    assert [x.id for x in r2.queues] == [w.id]
    r2.flush()
    assert repo.get(w.id).state is S.QUEUED


def test_events_land_in_the_shared_log(repo: WorkloadRepository) -> None:
    clock = FakeClock()
    r = _router(repo, clock)
    w = r.admit("carol", {"type": "embedding", "priority": 8})
    _run(r, [gpu("g0", "MINING")])
    clock.advance(1.5)
    r.cancel(w.id)
    r.flush()
    fleet = FleetRepository(repo.engine)
    evs = list(reversed(fleet.events(kind="workload")))
    assert [e.payload["state"] for e in evs] == ["queued", "scheduled", "running", "cancelled"]
    assert all(e.payload["workload_id"] == w.id and e.payload["owner"] == "carol" for e in evs)
    assert evs[-1].device_id == "g0"
    rel = fleet.events(kind="gpu_released")
    assert len(rel) == 1 and rel[0].payload["previous_mode"] == "MINING"
    row = repo.get(w.id)
    assert row.state is S.CANCELLED and row.preempted_mining
    assert (row.gpu_ms, row.cost_micro_usd) == (1500, 1500)
    assert row.started_at is not None and row.finished_at is not None


def test_list_pagination_filters_and_usage_by_owner(repo: WorkloadRepository) -> None:
    clock = FakeClock()
    r = _router(repo, clock)
    ws = [r.admit("a" if i % 2 else "b", {"type": "batch" if i % 3 else "training", "priority": 5})
          for i in range(11)]
    r.cancel(ws[0].id)
    r.flush()
    seen, cursor = [], None
    while True:
        page, cursor = repo.list(owner="a", limit=2, before_seq=cursor)
        seen += [w.id for w in page]
        if cursor is None:
            break
    assert seen == [w.id for w in reversed(ws) if w.owner == "a"]
    page, nxt = repo.list(state=S.CANCELLED)
    assert [w.id for w in page] == [ws[0].id] and nxt is None
    page, _ = repo.list(owner="b", type=WorkloadType.TRAINING, limit=100)
    assert [w.id for w in page] == [w.id for w in reversed(ws) if w.owner == "b" and w.type.value == "training"]
    assert page
    # usage: only metered time counts, split per owner and type
    running = _run(r, [gpu("g0", "INFERENCE")])
    clock.advance(3)
    r.complete(running[0])
    r.flush()
    owner = r.get(running[0]).owner
    other = "b" if owner == "a" else "a"
    assert repo.usage(owner).cost_micro_usd == 3000
    assert repo.usage(other).cost_micro_usd == 0
    assert repo.usage().to_dict()["gpu_seconds"] == 3.0


def test_failed_write_refuses_new_work_and_retries_updates(repo: WorkloadRepository,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    r = _router(repo, clock)
    a = r.admit("a", {"type": "batch", "priority": 5})
    r.flush()
    b = r.admit("a", {"type": "batch", "priority": 5})
    r.cancel(a.id)

    def broken(batch):  # type: ignore[no-untyped-def]
        raise StoreError("store down")

    monkeypatch.setattr(repo, "apply", broken)
    with pytest.raises(StoreError):
        r.flush()
    monkeypatch.undo()
    r.flush()
    assert repo.get(b.id) is None
    assert repo.get(a.id).state is S.CANCELLED
    assert repo.count() == 1
