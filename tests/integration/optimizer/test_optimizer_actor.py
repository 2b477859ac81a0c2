"""The optimizer actor on a real Ray session over the local fleet's GPU and facility actors."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import ray
import sqlalchemy as sa

from actors.facility import FacilityActor
from actors.gpu import GpuActor
from actors.optimizer import launch_optimizer, stop_optimizer
from actors.options import facility_actor_options, gpu_actor_options
from hcp.clock import utcnow
from hcp.config import DEFAULT_FLEET_SPEC, Settings
from hcp.economics.market import MarketSimulator
from hcp.economics.optimizer import OptimizerRepository, OutcomeStatus
from hcp.fleet.modes import GpuMode, SwitchRequest
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import FleetSpec, load_fleet_spec
from hcp.store import connect, migrate
from hcp.store.models import Event
from tests.integration.optimizer.helpers import FlipPolicy
from tests.waiting import wait_until

_wait = wait_until


class LocalFleet:
    def __init__(self, spec: FleetSpec, settings: Settings, gpus: dict[str, Any], facilities: dict[str, Any],
                 repo: FleetRepository, tag: str) -> None:
        self.spec, self.settings, self.gpus, self.facilities, self.repo, self.tag = (
            spec, settings, gpus, facilities, repo, tag)


def _fleet(database_url: str, tmp_path, **overrides: Any) -> Iterator[LocalFleet]:  # type: ignore[no-untyped-def]
    spec = load_fleet_spec(DEFAULT_FLEET_SPEC)
    settings = Settings(home=tmp_path, database_url=database_url, ray_namespace="hcp-test",
                        checkpoint_seconds=1.0, mining_cpu_share=0.2, **overrides)
    repo = FleetRepository(connect(database_url))
    migrate(repo.engine)
    repo.sync_fleet(spec)
    tag = tmp_path.name
    gpus = {g.id: GpuActor.options(**gpu_actor_options(g, settings) | {"name": f"gpu:{g.id}-{tag}"})
            .remote(g, settings) for g in spec.gpus()}
    fac = spec.facilities[0]
    facilities = {fac.name: FacilityActor.options(
        **facility_actor_options(fac, settings) | {"name": f"facility:{fac.name}-{tag}"})
        .remote(fac, settings, gpus)}
    ray.get([h.status.remote() for h in gpus.values()], timeout=180)
    try:
        yield LocalFleet(spec, settings, gpus, facilities, repo, tag)
    finally:
        for h in list(facilities.values()) + list(gpus.values()):
            ray.kill(h, no_restart=True)
        repo.engine.dispose()


@pytest.fixture(scope="module")
def fleet(ray_session, tmp_path_factory) -> Iterator[LocalFleet]:  # type: ignore[no-untyped-def]
    """One local fleet (2 GPU actors, 4 ASICs behind a facility actor) shared by this module:
    starting GPU actors (both contexts loaded and warmed) is the slow part."""
    tmp = tmp_path_factory.mktemp("opt")
    yield from _fleet(f"sqlite:///{tmp / 'hcp.db'}", tmp, optimizer_interval_seconds=0.3,
                      optimizer_dwell_seconds=0.0, optimizer_apply_timeout_seconds=2.0)


def test_simulated_market_moves_gpus_off_mining_within_the_cap(fleet: LocalFleet) -> None:
    f, since = fleet, utcnow()
    ray.get([h.switch.remote(SwitchRequest(i, GpuMode.MINING, "itest start"))
             for i, h in f.gpus.items()])
    opt = launch_optimizer(f.spec, f.settings, f.gpus, f.facilities, name=f"optimizer-{f.tag}",
                           feed=MarketSimulator(11, [x.name for x in f.spec.facilities]))
    try:
        _wait(lambda: ray.get(opt.status.remote()).steps >= 3, timeout=60)
        ray.get(opt.pause.remote())
        repo = OptimizerRepository(f.repo.engine)
        rows = [(d, o) for d, o in repo.decisions(limit=1000) if d.issued_at >= since]
        assert rows, "the optimizer made no decision"
        assert all(o is not None and o.status is OutcomeStatus.APPLIED for _, o in rows)
        assert all(o.latency_ms is not None and o.latency_ms > 0 for _, o in rows)
        # Mining bitcoin on a GPU loses money next to renting it out: no GPU is left mining.
        modes = {g: ray.get(h.status.remote()).mode for g, h in f.gpus.items()}
        assert "MINING" not in modes.values()
        for d, o in rows:
            if d.kind == "gpu":
                assert f.repo.device_state(d.device_id).generation >= o.generation
        report = ray.get(f.facilities[f.spec.facilities[0].name].report.remote())
        assert report.facility_power_w <= report.capacity_w
        # Realized profit is recorded as integer micro-USD from the second step on.
        steps = [x for x in repo.steps(limit=1000) if x.at >= since]
        assert len(steps) >= 3 and all(isinstance(s.realized_profit_micro_usd, int) for s in steps[:-1])
        prof = ray.get(opt.profitability.remote())
        assert set(prof.devices) == {d.id for d in (*f.spec.gpus(), *f.spec.asics())}
        assert prof.devices["lab-gpu-0"]["INFERENCE"] > prof.devices["lab-gpu-0"]["MINING"]
        recent = ray.get(opt.recent.remote(5))
        assert recent and recent[0].outcome.status.value == "APPLIED"
    finally:
        stop_optimizer(opt)


def test_killed_optimizer_never_applies_a_decision_twice(fleet: LocalFleet) -> None:
    f, since = fleet, utcnow()
    devices = [(g.id, g.facility, "gpu") for g in f.spec.gpus()] + [
        (a.id, a.facility, "asic") for a in f.spec.asics()[:1]]
    opt = launch_optimizer(f.spec, f.settings, f.gpus, f.facilities, name=f"optimizer-kill-{f.tag}",
                           feed=MarketSimulator(5, [x.name for x in f.spec.facilities]),
                           policy=FlipPolicy(devices))
    repo = OptimizerRepository(f.repo.engine)
    try:
        pid = ray.get(opt.pid.remote())
        _wait(lambda: _steps(repo, since) >= 4, timeout=60, every=0.05)
        ray.kill(opt, no_restart=False)  # a crash mid-run: Ray restarts it
        # ray.kill is asynchronous: the old process may still answer a call or two, so wait for
        # a different process rather than for any answer.
        _wait(lambda: _pid_or_none(opt) not in (None, pid), timeout=120, every=0.5)
        before = _steps(repo, since)
        _wait(lambda: _steps(repo, since) >= before + 4, timeout=60, every=0.1)
        ray.get(opt.pause.remote())
        time.sleep(f.settings.optimizer.apply_timeout_seconds + 0.5)
        ray.get(opt.reconcile.remote())
    finally:
        stop_optimizer(opt)

    rows = [(d, o) for d, o in repo.decisions(limit=10_000) if d.issued_at >= since]
    assert repo.pending() == []  # every decision has exactly one outcome
    assert len({d.decision_id for d, _ in rows}) == len(rows)
    with f.repo.engine.connect() as c:
        reasons = c.execute(sa.select(Event.reason).where(
            Event.kind == "mode_change", Event.reason.like("optimizer %"), Event.at >= since)).scalars().all()
    per_decision = Counter(r.split(" ")[1] for r in reasons)
    assert per_decision and max(per_decision.values()) == 1  # no decision applied twice
    applied = {d.decision_id for d, o in rows if o is not None and o.status.applied}
    assert set(per_decision) == applied  # and each applied one is exactly one committed change
    # Every device ends in the mode of the last decision it applied.
    for dev, _fac, kind in devices:
        last = next((d for d, o in rows if d.device_id == dev and d.decision_id in applied), None)
        assert last is not None
        assert f.repo.device_state(dev).mode.value == last.to_mode
        if kind == "gpu":
            assert ray.get(f.gpus[dev].status.remote()).mode == last.to_mode


def _steps(repo: OptimizerRepository, since: datetime) -> int:
    return sum(1 for x in repo.steps(limit=10_000) if x.at >= since)


def _pid_or_none(h):  # type: ignore[no-untyped-def]
    try:
        return ray.get(h.pid.remote(), timeout=5)
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
            ray.exceptions.GetTimeoutError):
        return None
