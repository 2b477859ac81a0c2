"""GpuWorker and GpuDevice without Ray: real SHA-256d mining, the real MiniLM model, a SQLite store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcp.config import Settings
from hcp.errors import ConflictError, ContextUnavailableError, InvalidModeError, SwitchFailedError
from hcp.fleet.builder import build_gpu_worker
from hcp.fleet.device import GpuDevice
from hcp.fleet.modes import GpuMode
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import GpuSpec, parse_fleet_spec
from hcp.fleet.worker import GpuWorker
from hcp.inference import InferenceModel, create_model
from hcp.store import connect, migrate

SPEC = GpuSpec(id="u-gpu-0", facility="u-lab", model="L4", memory_gb=24, power_w=72, idle_w=16)


@pytest.fixture(scope="module")
def model() -> InferenceModel:
    m = create_model("all-MiniLM-L6-v2", device="cpu")
    m.load()
    m.warm()
    return m


@pytest.fixture
def worker(model: InferenceModel, monkeypatch: pytest.MonkeyPatch) -> Iterator[GpuWorker]:
    # Share the module's loaded model rather than loading one per test.
    monkeypatch.setattr("hcp.fleet.builder.create_model", lambda name, device=None: model)
    settings = Settings(mining_cpu_share=0.5, share_difficulty=1 / 65536, mining_batch_nonces=1024)
    w = build_gpu_worker(SPEC, settings)
    yield w
    w.stop()
    if not model.loaded:
        model.load()
        model.warm()


def _wait(pred, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_mining_runs_real_work_and_pauses_on_switch(worker: GpuWorker) -> None:
    worker.start(GpuMode.MINING)
    _wait(lambda: worker.status().hashes_done > 20_000)
    r = worker.switch(GpuMode.INFERENCE, "test")
    assert (r.from_mode, r.to_mode, r.noop, r.healthy) == (GpuMode.MINING, GpuMode.INFERENCE, False, True)
    assert r.total_ms == pytest.approx(r.phases.total_ms, abs=1e-6)
    cursor = worker.saved_state
    assert cursor is not None and cursor.hashes_done == worker.status().hashes_done
    frozen = worker.status().hashes_done
    time.sleep(0.2)
    assert worker.status().hashes_done == frozen  # mining really stopped
    vec = worker.embed(["hello world"])
    assert vec.shape == (1, 384)
    assert worker.status().inference_requests == 1

    r = worker.switch("MINING", "back")
    assert r.to_mode is GpuMode.MINING
    _wait(lambda: worker.status().hashes_done > frozen)
    # Resumed at the saved cursor: no nonce range was skipped or mined twice.
    snap = worker.mining_snapshot()
    assert (snap.extranonce, snap.next_nonce - cursor.next_nonce) == (cursor.extranonce, snap.hashes_done - frozen)


def test_embed_refused_outside_inference_and_noop_and_bad_mode(worker: GpuWorker) -> None:
    worker.start(GpuMode.IDLE)
    with pytest.raises(ContextUnavailableError):
        worker.embed(["not now"])
    r = worker.switch(GpuMode.IDLE)
    assert r.noop and r.total_ms == 0.0
    with pytest.raises(InvalidModeError):
        worker.switch("TURBO")  # type: ignore[arg-type]
    time.sleep(0.1)
    assert worker.status().hashes_done == 0  # IDLE never mines


def test_failed_health_check_rolls_back(worker: GpuWorker, model: InferenceModel) -> None:
    worker.start(GpuMode.MINING)
    _wait(lambda: worker.status().hashes_done > 0)
    model.unload()  # the inference context is gone: switching to it must fail and change nothing
    with pytest.raises(SwitchFailedError):
        worker.switch(GpuMode.INFERENCE)
    assert worker.mode is GpuMode.MINING
    before = worker.status().hashes_done
    _wait(lambda: worker.status().hashes_done > before)  # mining resumed


def test_mining_is_throttled_to_its_cpu_share(model: InferenceModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcp.fleet.builder.create_model", lambda name, device=None: model)
    w = build_gpu_worker(SPEC, Settings(mining_cpu_share=0.1, mining_batch_nonces=1024))
    w.start(GpuMode.MINING)
    try:
        time.sleep(2.0)
        util = w.status().utilization
    finally:
        w.stop()
    # Busy fraction of the window: bounded by the duty cycle (plus scheduling slack), never a full core.
    assert 0.0 < util < 0.25


def test_simulated_telemetry_is_labelled_and_follows_mode(worker: GpuWorker) -> None:
    worker.start(GpuMode.MINING)
    _wait(lambda: worker.status().hashes_done > 0)
    mining = worker.status().telemetry
    worker.switch(GpuMode.CURTAILED)
    curtailed = worker.status().telemetry
    assert mining.source == curtailed.source == "simulated"
    assert mining.power_w > 10 * curtailed.power_w


@pytest.fixture
def repo(tmp_path: Path) -> FleetRepository:
    r = FleetRepository(connect(f"sqlite:///{tmp_path / 'u.db'}"))
    migrate(r.engine)
    r.sync_fleet(parse_fleet_spec({"fleet": "u", "facilities": [{
        "name": "u-lab", "location": "x", "capacity_mw": 1, "pue": 1.1,
        "gpus": [{"id": "u-gpu-0", "model": "L4"}]}]}, "u"))
    return r


def test_device_commits_switches_and_rolls_back_an_uncommitted_one(worker: GpuWorker, repo: FleetRepository) -> None:
    dev = GpuDevice(worker, repo, "u-lab")
    assert dev.start() is GpuMode.IDLE
    c = dev.switch("MINING", "go")
    assert c.generation == 1 and repo.device_state("u-gpu-0").mode is GpuMode.MINING
    _wait(lambda: worker.status().hashes_done > 0)
    # Someone else committed behind this device's back: its next switch must not be applied.
    from hcp.fleet.modes import SwitchPhases, SwitchReport

    other = SwitchReport("u-gpu-0", GpuMode.MINING, GpuMode.IDLE, SwitchPhases(0, 0, 0, 0), 0.0,
                         c.report.at, "elsewhere")
    repo.commit_mode_change(other, 1)
    with pytest.raises(ConflictError):
        dev.switch("INFERENCE", "stale")
    assert worker.mode is GpuMode.MINING  # rolled back to what it was running
    st = repo.device_state("u-gpu-0")
    assert (st.mode, st.generation) == (GpuMode.IDLE, 2)


def test_checkpoint_persists_cursor_and_shares_once(worker: GpuWorker, repo: FleetRepository) -> None:
    dev = GpuDevice(worker, repo, "u-lab")
    dev.start()
    dev.switch("MINING")
    _wait(lambda: worker.status().shares_found >= 2, timeout=60)
    added = dev.checkpoint()
    st = repo.device_state("u-gpu-0")
    assert added >= 2 and st.shares_found == added
    assert st.mining_state is not None and st.hashes_done > 0
    dev.switch("IDLE")  # stop mining so the counts can settle
    dev.checkpoint()
    assert repo.device_state("u-gpu-0").shares_found == worker.status().shares_found
