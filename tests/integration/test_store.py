"""The relational store on both backends: migrations, committed switches, append-only events, shares."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hcp.config import DEFAULT_FLEET_SPEC
from hcp.errors import ConflictError, StoreError, UnknownDeviceError
from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import load_fleet_spec
from hcp.mining import Share
from hcp.store import connect, migrate


@pytest.fixture
def repo(database_url: str) -> FleetRepository:
    engine = connect(database_url)
    migrate(engine)
    migrate(engine)  # a second run at every start must be a no-op
    r = FleetRepository(engine)
    r.sync_fleet(load_fleet_spec(DEFAULT_FLEET_SPEC))
    return r


def _report(device: str, a: GpuMode, b: GpuMode) -> SwitchReport:
    return SwitchReport(device, a, b, SwitchPhases(0.5, 0.1, 0.01, 0.2), 0.81,
                        datetime.now(UTC), "test")


def test_sync_creates_every_device_once_and_keeps_modes(repo: FleetRepository) -> None:
    spec = load_fleet_spec(DEFAULT_FLEET_SPEC)
    states = {s.device_id: s for s in repo.device_states()}
    assert set(states) == {g.id for g in spec.gpus()} | {a.id for a in spec.asics()}
    assert states["lab-gpu-0"].mode is GpuMode.IDLE and states["lab-gpu-0"].kind == "gpu"
    assert states["lab-s21-0"].mode is GpuMode.MINING and states["lab-s21-0"].kind == "asic"
    repo.commit_mode_change(_report("lab-gpu-0", GpuMode.IDLE, GpuMode.MINING), 0)
    repo.sync_fleet(spec)  # a restart of the platform must not reset committed modes
    assert repo.device_state("lab-gpu-0").mode is GpuMode.MINING
    assert len(repo.device_states()) == len(states)


def test_commit_is_compare_and_set_and_logs_phases(repo: FleetRepository) -> None:
    gen = repo.commit_mode_change(_report("lab-gpu-1", GpuMode.IDLE, GpuMode.MINING), 0,
                                  facility="local-lab", mining_state={"next_nonce": 42}, hashes_done=4096)
    assert gen == 1
    with pytest.raises(ConflictError):  # a replay of the same commit is refused
        repo.commit_mode_change(_report("lab-gpu-1", GpuMode.IDLE, GpuMode.MINING), 0)
    gen = repo.commit_mode_change(_report("lab-gpu-1", GpuMode.MINING, GpuMode.INFERENCE), gen)
    st = repo.device_state("lab-gpu-1")
    assert (st.mode, st.generation, st.hashes_done, st.mining_state) == (GpuMode.INFERENCE, 2, 4096, {"next_nonce": 42})
    assert st.mode_since.tzinfo is not None and st.mode_since.utcoffset().total_seconds() == 0
    evs = repo.events(device_id="lab-gpu-1", kind="mode_change")
    assert [(e.from_mode, e.to_mode, e.generation) for e in evs] == [("MINING", "INFERENCE", 2), ("IDLE", "MINING", 1)]
    assert evs[0].phases_ms == {"pause": 0.5, "save_state": 0.1, "activate": 0.01, "health_check": 0.2}
    assert evs[1].facility == "local-lab"


def test_events_are_append_only_in_the_database(repo: FleetRepository) -> None:
    repo.record_event("note", device_id="lab-gpu-0", payload={"k": 1})
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), repo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE events SET kind = 'forged'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), repo.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM events"))
    assert [e.kind for e in repo.events(device_id="lab-gpu-0")] == ["note"]


def test_shares_count_once_even_when_found_again(repo: FleetRepository) -> None:
    shares = [Share(job_id="j", nonce=n, extranonce=0, hash_hex=f"{n:064x}", difficulty=1.5) for n in (1, 2, 3)]
    assert repo.record_shares("lab-gpu-0", shares) == 3
    assert repo.record_shares("lab-gpu-0", shares[1:] + [Share("j", 9, 0, "9" * 64, 2.0)]) == 1
    assert repo.device_state("lab-gpu-0").shares_found == 4


def test_unknown_device_and_naive_time_are_refused(repo: FleetRepository) -> None:
    with pytest.raises(UnknownDeviceError):
        repo.device_state("nope")
    naive = SwitchReport("lab-gpu-0", GpuMode.IDLE, GpuMode.MINING, SwitchPhases(0, 0, 0, 0), 0.0,
                         datetime(2026, 1, 1), "naive")
    with pytest.raises(StoreError):
        repo.commit_mode_change(naive, 0)
    assert repo.device_state("lab-gpu-0").generation == 0
    assert repo.events(device_id="lab-gpu-0", kind="mode_change") == []
