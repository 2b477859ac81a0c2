"""A GPU held by a customer's job (RENTED) or a platform workload changes mode only for its
holder: real SHA-256d mining, the real MiniLM model, a SQLite store, no Ray."""

from __future__ import annotations

import time

import pytest

from hcp.errors import GpuBusyError, InvalidTransitionError, ValidationError
from hcp.fleet.device import GpuDevice
from hcp.fleet.holds import Hold, HoldKind
from hcp.fleet.modes import GpuMode
from hcp.fleet.repository import FleetRepository
from hcp.fleet.worker import GpuWorker
from tests.unit.test_worker import _wait, model, repo, worker  # noqa: F401 -- fixtures

JOB = Hold.job("job-1")


def _events(repo: FleetRepository) -> list[tuple[str | None, str | None]]:
    return [(e.from_mode, e.to_mode) for e in reversed(repo.events(kind="mode_change", limit=50))]


def test_a_rented_gpu_stops_mining_and_refuses_every_other_switch(worker: GpuWorker,
                                                                   repo: FleetRepository) -> None:
    dev = GpuDevice(worker, repo, "u-lab")
    dev.start()
    dev.switch("MINING", "go")
    _wait(lambda: worker.status().hashes_done > 0)

    r = dev.hold(JOB, "rented to job-1")
    assert (r.from_mode, r.to_mode, r.noop) == (GpuMode.MINING, GpuMode.RENTED, False)
    st = repo.device_state("u-gpu-0")
    assert (st.mode, st.held_by, st.generation) == (GpuMode.RENTED, "job:job-1", 2)
    hashes = worker.status().hashes_done
    time.sleep(0.3)
    assert worker.status().hashes_done == hashes  # mining paused at its batch boundary

    # The optimizer's (or an operator's) switch is refused with a typed error, and nothing moved.
    for target in ("MINING", "IDLE", "CURTAILED", "INFERENCE"):
        with pytest.raises(GpuBusyError) as e:
            dev.switch(target, "optimizer d-1 BETTER_PROFIT")
        assert e.value.code == "gpu_busy" and e.value.http_status == 409
    with pytest.raises(GpuBusyError):
        dev.hold(Hold.job("job-2"))
    with pytest.raises(GpuBusyError):
        dev.hold(Hold.workload("w-1"))
    assert dev.hold(JOB).noop  # the holder asking again changes nothing
    assert repo.device_state("u-gpu-0").generation == 2
    assert dev.status().held_by == "job:job-1" and dev.status().holder == JOB

    assert dev.release(Hold.job("job-2")) is None  # only the holder gives it back
    back = dev.release(JOB)
    assert back is not None and (back.from_mode, back.to_mode) == (GpuMode.RENTED, GpuMode.MINING)
    st = repo.device_state("u-gpu-0")
    assert (st.mode, st.held_by) == (GpuMode.MINING, None)
    _wait(lambda: worker.status().hashes_done > hashes)  # mining resumed where it stopped
    idle = dev.switch("IDLE", "free again", "decision-9")
    assert idle.to_mode is GpuMode.IDLE and idle.correlation_id == "decision-9"
    assert _events(repo) == [("IDLE", "MINING"), ("MINING", "RENTED"), ("RENTED", "MINING"),
                             ("MINING", "IDLE")]


def test_the_hold_survives_a_restart(worker: GpuWorker, repo: FleetRepository) -> None:
    dev = GpuDevice(worker, repo, "u-lab")
    dev.start()
    dev.hold(JOB)
    worker.stop()
    # A restarted actor (a new device over the same store) comes back RENTED, still held.
    again = GpuDevice(worker, repo, "u-lab")
    worker._stop.clear()  # noqa: SLF001 -- let the stopped worker start once more
    assert again.start(restarted=True) is GpuMode.RENTED
    assert again.holder == JOB
    with pytest.raises(GpuBusyError):
        again.switch("MINING")
    assert again.release(JOB) is not None and repo.device_state("u-gpu-0").held_by is None


def test_workload_holds_take_over_only_what_they_name(worker: GpuWorker, repo: FleetRepository) -> None:
    dev = GpuDevice(worker, repo, "u-lab")
    dev.start()
    dev.switch("INFERENCE")
    low, high = Hold.workload("w-low"), Hold.workload("w-high")
    r = dev.hold(low)
    assert r.noop and repo.device_state("u-gpu-0").held_by == "workload:w-low"  # no mode change
    with pytest.raises(GpuBusyError):
        dev.hold(high)
    dev.hold(high, replaces=low)  # a real-time workload preempting an interruptible one
    assert dev.holder == high and repo.device_state("u-gpu-0").generation == 1
    # A workload's GPU stays in INFERENCE when it ends: switching back is the optimizer's call.
    assert dev.release(low) is None
    assert dev.release(high) is not None and dev.worker.mode is GpuMode.INFERENCE
    assert repo.device_state("u-gpu-0").held_by is None


def test_rented_is_entered_only_through_a_hold_and_never_from_curtailed(
        worker: GpuWorker, repo: FleetRepository) -> None:
    dev = GpuDevice(worker, repo, "u-lab")
    dev.start()
    with pytest.raises(InvalidTransitionError):
        dev.switch("RENTED")
    dev.switch("CURTAILED", "power cap")
    with pytest.raises(GpuBusyError):
        dev.hold(JOB)
    assert repo.device_state("u-gpu-0").held_by is None


def test_hold_keys_round_trip_and_bad_ids_are_refused() -> None:
    for h in (Hold.job("0xabc"), Hold.workload("3f1e")):
        assert Hold.parse(h.key) == h
    assert Hold.parse(None) is None and Hold.parse("") is None
    assert HoldKind.JOB.mode is GpuMode.RENTED and HoldKind.WORKLOAD.mode is GpuMode.INFERENCE
    for bad in ("", "a:b", "x" * 121):
        with pytest.raises(ValidationError):
            Hold.job(bad)
