"""GPU and facility actors on a real Ray session, over a real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import ray

from actors.facility import FacilityActor
from actors.gpu import GpuActor
from actors.options import facility_actor_options, gpu_actor_options
from hcp.config import Settings
from hcp.errors import InvalidModeError
from hcp.fleet.modes import GpuMode, SwitchRequest
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.store import connect, migrate
from tests.waiting import wait_until

SPEC = {
    "fleet": "itest",
    "facilities": [{
        "name": "itest-lab", "location": "test", "capacity_mw": 0.01, "pue": 1.2,
        "gpus": [{"id": "it-gpu-0", "model": "L4"}],
        "asics": [{"id": "it-s21", "model": "S21", "count": 2}],
    }],
}


@pytest.fixture
def fleet(ray_session, database_url: str, tmp_path):  # type: ignore[no-untyped-def]
    spec = parse_fleet_spec(SPEC, "itest")
    settings = Settings(home=tmp_path, database_url=database_url, ray_namespace="hcp-test",
                        checkpoint_seconds=0.5, mining_cpu_share=0.5, share_difficulty=1 / 65536)
    repo = FleetRepository(connect(database_url))
    migrate(repo.engine)
    repo.sync_fleet(spec)
    gspec = spec.gpus()[0]
    opts = gpu_actor_options(gspec, settings) | {"name": f"gpu:{gspec.id}-{tmp_path.name}"}
    gpu = GpuActor.options(**opts).remote(gspec, settings)
    fac_spec = spec.facilities[0]
    fopts = facility_actor_options(fac_spec, settings) | {"name": f"facility:{tmp_path.name}"}
    facility = FacilityActor.options(**fopts).remote(fac_spec, settings, {gspec.id: gpu})
    ray.get(gpu.status.remote(), timeout=120)
    yield gpu, facility, repo
    for h in (facility, gpu):
        ray.kill(h, no_restart=True)



def _wait(pred, timeout: float = 30.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    return wait_until(pred, timeout, every)


def test_switches_are_fast_durable_and_serve_real_embeddings(fleet) -> None:  # type: ignore[no-untyped-def]
    gpu, facility, repo = fleet
    r = ray.get(gpu.switch.remote(SwitchRequest("it-gpu-0", GpuMode.MINING, "itest")))
    assert (r.from_mode, r.to_mode, r.generation) == ("IDLE", "MINING", 1)
    assert set(r.to_dict()["phases"]) == {"pause_ms", "save_state_ms", "activate_ms",
                                          "health_check_ms"}
    _wait(lambda: ray.get(gpu.status.remote()).hashes_done > 0)

    r = ray.get(gpu.switch.remote(SwitchRequest("it-gpu-0", GpuMode.INFERENCE, "itest")))
    assert r.to_mode == "INFERENCE" and r.generation == 2
    vecs = np.array(ray.get(gpu.embed.remote([
        "The GPU switched from mining to inference.",
        "The graphics card changed from mining to serving models.",
        "Bananas are rich in potassium.",
    ])))
    assert vecs.shape == (3, 384)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2

    state = repo.device_state("it-gpu-0")
    assert (state.mode.value, state.generation) == ("INFERENCE", 2)
    evs = repo.events(device_id="it-gpu-0", kind="mode_change")
    assert [(e.from_mode, e.to_mode) for e in evs] == [("MINING", "INFERENCE"), ("IDLE", "MINING")]
    assert all(e.total_ms is not None and e.total_ms >= 0 for e in evs)

    with pytest.raises(InvalidModeError):  # an unknown mode cannot even be asked for
        SwitchRequest("it-gpu-0", "TURBO")  # type: ignore[arg-type]
    # A request addressed to another device is refused by this GPU's actor, which stays as it was.
    with pytest.raises(ray.exceptions.RayTaskError, match="unknown_device|is not"):
        ray.get(gpu.switch.remote(SwitchRequest("it-gpu-1", GpuMode.MINING, "misrouted")))
    assert ray.get(gpu.status.remote()).mode == "INFERENCE"
    rep = ray.get(facility.report.remote()).to_dict()
    assert rep["gpu_modes"] == {"INFERENCE": 1}
    assert rep["asic_modes"] == {"MINING": 2}
    assert rep["it_power_w"] > 2 * 3500  # two mining S21s plus the GPU
    assert rep["facility_power_w"] == pytest.approx(rep["it_power_w"] * 1.2)
    assert rep["over_cap"] == (rep["facility_power_w"] > 10_000)


def test_killed_gpu_actor_comes_back_in_its_committed_mode(fleet) -> None:  # type: ignore[no-untyped-def]
    gpu, _facility, repo = fleet
    ray.get(gpu.switch.remote(SwitchRequest("it-gpu-0", GpuMode.MINING, "itest")))
    # Mine until a checkpoint has recorded shares and a cursor.
    _wait(lambda: repo.device_state("it-gpu-0").shares_found > 0 and repo.device_state("it-gpu-0").hashes_done > 0,
          timeout=60)
    before = repo.device_state("it-gpu-0")
    pid = ray.get(gpu.pid.remote())
    os.kill(pid, signal.SIGKILL)  # a crash mid-mining, not a clean stop

    status = _wait(lambda: _status_or_none(gpu), timeout=120, every=0.5)
    assert ray.get(gpu.pid.remote()) != pid
    assert status.mode == "MINING" and status.generation == before.generation
    # Mining resumed from the committed cursor: counters never go backwards past the checkpoint.
    assert status.hashes_done >= before.hashes_done
    after = repo.device_state("it-gpu-0")
    assert after.restarts == before.restarts + 1 and after.mode.value == "MINING"
    evs = repo.events(device_id="it-gpu-0")
    assert evs[0].kind == "actor_recovered" and evs[0].payload["mode"] == "MINING"
    changes = [e for e in evs if e.kind == "mode_change"]
    assert len(changes) == after.generation  # one event per committed change, none lost or doubled
    assert changes[0].to_mode == after.mode.value
    # Shares found again after the restart (from the checkpointed cursor) count once.
    ray.get(gpu.checkpoint.remote())
    with repo.engine.connect() as conn:
        import sqlalchemy as sa

        dup = conn.execute(sa.text(
            "SELECT COUNT(*) FROM (SELECT job_id, extranonce, nonce FROM shares "
            "GROUP BY job_id, extranonce, nonce HAVING COUNT(*) > 1) d")).scalar()
    assert dup == 0


def _status_or_none(gpu):  # type: ignore[no-untyped-def]
    try:
        return ray.get(gpu.status.remote(), timeout=5)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return None
