"""OptimizerService over a real store (SQLite file and PostgreSQL) with store-backed fake devices."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from hcp.economics.optimizer import OptimizerRepository, OptimizerService, OutcomeStatus
from hcp.economics.optimizer.economics import FleetProfit
from hcp.economics.policy import FleetPolicy, PolicyParams
from hcp.economics.policy.profit import MODE_INDEX
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.store import connect, migrate
from tests.unit.optimizer.fakes import (
    SPEC,
    T0,
    Crash,
    FakeClock,
    ScriptedFeed,
    ScriptedPolicy,
    StoreBackedPort,
    tick,
)

S = timedelta(seconds=1)


@pytest.fixture
def env(database_url: str):  # type: ignore[no-untyped-def]
    spec = parse_fleet_spec(SPEC, "unit")
    engine = connect(database_url)
    migrate(engine)
    fleet = FleetRepository(engine)
    fleet.sync_fleet(spec)
    yield spec, fleet, OptimizerRepository(engine)
    engine.dispose()


def _service(spec, fleet, repo, feed, policy, port, clock, timeout_s=10.0):  # type: ignore[no-untyped-def]
    return OptimizerService(feed=feed, policy=policy, profit=FleetProfit.from_fleet_spec(spec), port=port,
                            repo=repo, clock=clock, apply_timeout_s=timeout_s)


def _modes(fleet: FleetRepository) -> dict[str, str]:
    return {s.device_id: s.mode.value for s in fleet.device_states()}


def _grid_w(spec, modes: dict[str, str]) -> float:  # type: ignore[no-untyped-def]
    arrays = FleetProfit.from_fleet_spec(spec)._arrays
    idx = np.array([MODE_INDEX[modes[d]] for d in arrays.ids])
    return float(arrays.grid_w[np.arange(arrays.n), idx].sum())


def test_step_decides_applies_and_records_within_the_power_cap(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    clock = FakeClock(T0)
    port = StoreBackedPort(fleet)
    policy = FleetPolicy.from_fleet_spec(spec, PolicyParams(dwell_s=0.0))
    svc = _service(spec, fleet, repo, ScriptedFeed([tick(T0, power=100.0)]), policy, port, clock)
    # Nameplate (GPUs at full power, every ASIC mining) is far above the 10 kW grid cap.
    assert _grid_w(spec, {**_modes(fleet), "g-h100": "MINING", "g-l40s": "MINING"}) > 10_000

    r = svc.step(T0)

    modes = _modes(fleet)
    # A GPU earns next to nothing mining bitcoin; rented out it earns dollars an hour.
    assert modes["g-h100"] == modes["g-l40s"] == "INFERENCE"
    assert _grid_w(spec, modes) <= 10_000 + 1e-6
    assert any(d.reason == "POWER_CAP" for d in r.decisions)
    assert r.decisions and [o.status for o in r.outcomes] == [OutcomeStatus.APPLIED] * len(r.decisions)
    assert port.sent == [d.decision_id for d in r.decisions]
    # Each decision is in the record once, with its outcome, the device's committed generation
    # and a mode change event that names it.
    rows = repo.decisions(limit=100)
    assert {d.decision_id for d, _ in rows} == {d.decision_id for d in r.decisions}
    for d, o in rows:
        assert o is not None and o.status is OutcomeStatus.APPLIED
        st = fleet.device_state(d.device_id)
        assert (st.mode.value, st.generation) == (d.to_mode, o.generation)
        assert repo.committed_change_for(d) == (o.generation, d.to_mode)
    logged = fleet.events(kind="optimizer_decision", limit=100)
    assert sorted(e.payload["decision_id"] for e in logged) == sorted(d.decision_id for d in r.decisions)


def test_realized_profit_counts_the_modes_that_held_at_the_prices_in_effect(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    clock = FakeClock(T0)
    port = StoreBackedPort(fleet)
    port.now = T0 + S  # the devices commit one second after the step
    feed = ScriptedFeed([tick(T0, power=100.0), tick(T0 + timedelta(hours=1), power=100.0)])
    policy = ScriptedPolicy({T0: {"g-h100": "INFERENCE"}})
    svc = _service(spec, fleet, repo, feed, policy, port, clock)
    first = svc.step(T0)
    assert first.realized_profit_micro_usd is None  # no period before the first step
    clock.t = T0 + timedelta(hours=1)
    second = svc.step(clock.t)

    # By hand, H100 (700 W, idle 70 W, 60 % utilization -> 448 W serving), PUE 1.25, 100 USD/MWh:
    # IDLE for 1 s at -70*1.25*100/1e6 = -0.00875 USD/h, then INFERENCE for 3599 s at
    # 3.5*0.6 - 448*1.25*100/1e6 = 2.044 USD/h.
    h100 = -0.00875 / 3600 + 2.044 * 3599 / 3600
    # L40S idled all hour (35 W); both S21 (3500 W) and S19 XP (3010 W) mined all hour at
    # 40,000 USD/BTC, difficulty 2.8e13, 6.35 BTC per block.
    usd_per_th_h = 1e12 * 3600 * 6.35 / (2.8e13 * 2**32) * 40_000
    s21 = 200 * usd_per_th_h - 3500 * 1.25 * 100 / 1e6
    s19 = 140 * usd_per_th_h - 3010 * 1.25 * 100 / 1e6
    l40s = -35 * 1.25 * 100 / 1e6
    expected_usd = h100 + l40s + 2 * s21 + 2 * s19
    assert second.realized_profit_micro_usd == pytest.approx(expected_usd * 1e6, abs=6)
    assert isinstance(second.realized_profit_micro_usd, int)
    assert repo.last_step().realized_profit_micro_usd == second.realized_profit_micro_usd
    # The decision's own realized profit is its device's over the period it governed (the hour
    # after it), less the switch's pause (0.4 ms) at the 2.1 USD/h it switched into; it is
    # known only at the next step, never the period before the decision.
    [(d, o)] = [(d, o) for d, o in repo.decisions(limit=10) if d.device_id == "g-h100"]
    assert (d.from_mode, d.to_mode) == ("IDLE", "INFERENCE")
    assert o.realized_profit_micro_usd == pytest.approx((h100 - 2.1 * 0.4 / 3.6e6) * 1e6, abs=1)


def test_a_decisions_realized_profit_waits_for_the_period_it_governs(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    clock = FakeClock(T0)
    port = StoreBackedPort(fleet)
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    feed = ScriptedFeed([tick(T0, power=100.0), tick(t1, power=100.0), tick(t2, power=100.0)])
    # CURTAILED, then MINING for a minute, then CURTAILED again for the S19 XP.
    policy = ScriptedPolicy({T0: {"s19-0": "CURTAILED"}, t1: {"s19-0": "MINING"},
                             t2: {"s19-0": "CURTAILED"}})
    svc = _service(spec, fleet, repo, feed, policy, port, clock)
    svc.step(T0)
    port.now = clock.t = t1
    svc.step(t1)
    [mine] = [o for d, o in repo.decisions(limit=10) if d.to_mode == "MINING"]
    assert mine.realized_profit_micro_usd is None  # its minute has not run yet
    port.now = clock.t = t2
    svc.step(t2)
    by_mode = {d.to_mode: o for d, o in repo.decisions(limit=10) if d.tick_at in (T0, t1)}
    # By hand: 140 TH/s at 40,000 USD/BTC, difficulty 2.8e13, 6.35 BTC per block, less 3010 W
    # x PUE 1.25 at 100 USD/MWh, over one minute, less the 0.4 ms switch at that revenue rate.
    rev_h = 140e12 * 3600 * 6.35 / (2.8e13 * 2**32) * 40_000
    minute = (rev_h - 3010 * 1.25 * 100 / 1e6) / 60 - rev_h * 0.4 / 3.6e6
    assert by_mode["MINING"].realized_profit_micro_usd == pytest.approx(minute * 1e6, abs=1)
    # A curtailed ASIC earns and spends nothing in the policy's (and the backtest's) economics.
    assert by_mode["CURTAILED"].realized_profit_micro_usd == 0


def test_restart_mid_broadcast_never_resends_and_reconciles_from_the_device_record(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    t1, t2, t3 = T0 + 5 * S, T0 + 30 * S, T0 + 60 * S
    script = {T0: {"g-h100": "INFERENCE", "g-l40s": "INFERENCE", "s19-0": "CURTAILED"},
              t2: {"g-l40s": "MINING"}, t3: {"g-l40s": "MINING", "g-h100": "MINING"}}
    ticks = [tick(T0), tick(t1), tick(t2), tick(t3)]
    clock = FakeClock(T0)
    port = StoreBackedPort(fleet, crash_after=1)  # dies after the first order reached its device
    svc = _service(spec, fleet, repo, ScriptedFeed(ticks), ScriptedPolicy(script), port, clock)
    with pytest.raises(Crash):
        svc.step(T0)
    assert [d.device_id for d in repo.pending()] == ["g-h100", "g-l40s", "s19-0"]
    assert _modes(fleet)["g-h100"] == "INFERENCE" and _modes(fleet)["g-l40s"] == "IDLE"

    # The restarted optimizer replays the feed from the top with a fresh policy object.
    port2 = StoreBackedPort(fleet)
    policy2 = ScriptedPolicy(script)
    svc2 = _service(spec, fleet, repo, ScriptedFeed(ticks), policy2, port2, FakeClock(T0 + 2 * S))
    assert svc2.recover().tick_at == T0 and policy2.calls == 1  # dwell/policy state came back
    assert svc2.step(T0 + 2 * S).skipped == "already_processed"  # the replayed tick T0
    r = svc2.step(t1)  # inside the apply timeout: unsettled devices get nothing new
    assert r.decisions == [] and port2.sent == []
    r = svc2.step(t2)  # past the timeout: settled from the committed record, then decided anew
    settled = {o.decision_id.rsplit(":", 1)[-1]: o.status for o in r.reconciled}
    assert settled == {"g-h100": OutcomeStatus.RECONCILED_APPLIED,
                       "g-l40s": OutcomeStatus.RECONCILED_NOT_APPLIED,
                       "s19-0": OutcomeStatus.RECONCILED_NOT_APPLIED}
    assert [d.device_id for d in r.decisions] == ["g-l40s"]
    svc2.step(t3)

    sent = port.sent + port2.sent
    assert len(sent) == len(set(sent))  # no decision reached a device twice
    assert not set(port.sent) & set(port2.sent)
    assert repo.pending() == []
    outcomes = Counter(d.decision_id for d, o in repo.decisions(limit=100) if o is not None)
    assert set(outcomes.values()) == {1}
    with fleet.engine.connect() as c:
        reasons = c.execute(sa.text("SELECT reason FROM events WHERE kind = 'mode_change'")).scalars().all()
    tags = Counter(x.split(" ")[1] for x in reasons)
    assert set(tags.values()) == {1}  # one committed change per applied decision
    modes = _modes(fleet)
    assert (modes["g-h100"], modes["g-l40s"], modes["s19-0"]) == ("MINING", "MINING", "MINING")


def test_failed_and_timed_out_applies_are_recorded_not_retried(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    port = StoreBackedPort(fleet, fail={"g-l40s"}, timeout={"s19-1"})
    script = {T0: {"g-h100": "INFERENCE", "g-l40s": "INFERENCE", "s19-1": "CURTAILED"}}
    svc = _service(spec, fleet, repo, ScriptedFeed([tick(T0), tick(T0 + 5 * S)]), ScriptedPolicy(script),
                   port, FakeClock(T0))
    r = svc.step(T0)
    status = {o.decision_id.rsplit(":", 1)[-1]: o for o in r.outcomes}
    assert status["g-h100"].status is OutcomeStatus.APPLIED
    assert status["g-l40s"].status is OutcomeStatus.FAILED and "health check" in status["g-l40s"].error
    assert status["s19-1"].status is OutcomeStatus.TIMEOUT
    assert _modes(fleet)["g-l40s"] == "IDLE" and _modes(fleet)["s19-1"] == "MINING"
    svc.step(T0 + 5 * S)  # the script wants nothing at this tick: nothing is re-sent
    assert len(port.sent) == 3 and repo.pending() == []


def test_dwell_streaks_survive_a_restart(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    params = PolicyParams(dwell_s=600.0)
    # A site with room for everything: no power-cap decision resets a streak here.
    spec = parse_fleet_spec({**SPEC, "facilities": [{**SPEC["facilities"][0], "capacity_mw": 1.0}]}, "big")
    ticks = [tick(T0), tick(T0 + 600 * S)]
    port = StoreBackedPort(fleet)
    svc = _service(spec, fleet, repo, ScriptedFeed(ticks[:1]), FleetPolicy.from_fleet_spec(spec, params), port,
                   FakeClock(T0))
    first = svc.step(T0)
    assert first.decisions == []  # better, but not for long enough yet

    # Control: a policy that lost its streaks would not move the GPU at T0+600 s.
    fresh = FleetPolicy.from_fleet_spec(spec, params)
    assert not _to_inference(fresh.decide(ticks[1], _modes(fleet), ticks[1].at))

    restarted = FleetPolicy.from_fleet_spec(spec, params)
    svc2 = _service(spec, fleet, repo, ScriptedFeed(ticks[1:]), restarted, port, FakeClock(ticks[1].at))
    r = svc2.step(ticks[1].at)
    assert _to_inference(r.decisions) == ["g-h100", "g-l40s"]
    assert _modes(fleet)["g-h100"] == _modes(fleet)["g-l40s"] == "INFERENCE"


def _to_inference(decisions) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(d.device_id for d in decisions if d.kind == "gpu" and d.to_mode == "INFERENCE")


def test_the_record_is_append_only_and_outcomes_are_written_once(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    svc = _service(spec, fleet, repo, ScriptedFeed([tick(T0)]), ScriptedPolicy({T0: {"g-h100": "INFERENCE"}}),
                   StoreBackedPort(fleet), FakeClock(T0))
    r = svc.step(T0)
    assert repo.record_outcomes(r.outcomes, r.decisions) == []  # already has its outcome
    for table in ("optimizer_decisions", "optimizer_outcomes", "optimizer_steps"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), fleet.engine.begin() as c:
            c.execute(sa.text(f"DELETE FROM {table}"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), fleet.engine.begin() as c:
        c.execute(sa.text("UPDATE optimizer_outcomes SET status = 'FAILED'"))
    assert repo.decisions()[0][1].status is OutcomeStatus.APPLIED


def test_no_tick_means_no_step(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    policy = ScriptedPolicy({})
    svc = _service(spec, fleet, repo, ScriptedFeed([]), policy, StoreBackedPort(fleet), FakeClock(T0))
    assert svc.step(T0).skipped == "no_tick" and policy.calls == 0 and repo.last_step() is None


def test_state_of_another_policy_does_not_stop_a_restart(env) -> None:  # type: ignore[no-untyped-def]
    spec, fleet, repo = env
    svc = _service(spec, fleet, repo, ScriptedFeed([tick(T0)]), ScriptedPolicy({}), StoreBackedPort(fleet),
                   FakeClock(T0))
    svc.step(T0)  # stores {"calls": 1}, which FleetPolicy cannot read
    policy = FleetPolicy.from_fleet_spec(spec, PolicyParams(dwell_s=0.0))
    svc2 = _service(spec, fleet, repo, ScriptedFeed([tick(T0 + S)]), policy, StoreBackedPort(fleet),
                    FakeClock(T0 + S))
    assert svc2.recover().tick_at == T0
    assert svc2.step(T0 + S).decisions  # it runs, deciding with fresh streaks


def test_a_gpu_held_by_a_customer_gets_no_decision_and_counts_against_the_cap(env) -> None:  # type: ignore[no-untyped-def]
    from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport

    spec, fleet, repo = env
    # g-h100 is rented out (its agent took the hold); the policy would otherwise move it.
    st = fleet.device_state("g-h100")
    fleet.commit_mode_change(SwitchReport("g-h100", st.mode, GpuMode.RENTED, SwitchPhases(0, 0, 0, 0),
                                          0.0, T0, "rented to job j-1"), st.generation,
                             facility="lab", held_by="job:j-1")
    clock = FakeClock(T0)
    port = StoreBackedPort(fleet)
    policy = FleetPolicy.from_fleet_spec(spec, PolicyParams(dwell_s=0.0))
    svc = _service(spec, fleet, repo, ScriptedFeed([tick(T0, power=100.0, h100=0.0)]), policy, port,
                   clock)

    r = svc.step(T0)

    assert r.decisions and "g-h100" not in {d.device_id for d in r.decisions}
    modes = _modes(fleet)
    assert modes["g-h100"] == "RENTED" and fleet.device_state("g-h100").held_by == "job:j-1"
    # The rented GPU's draw is budgeted: the rest of the site fits under the 10 kW cap with it.
    assert _grid_w(spec, modes) <= 10_000 + 1e-6


def test_rentals_alone_over_the_cap_are_preempted_explicitly_and_recorded(env) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from hcp.economics import from_fleet_spec
    from hcp.economics.policy import FleetPolicy as Policy
    from hcp.fleet.modes import GpuMode, SwitchPhases, SwitchReport

    spec, fleet, repo = env
    for gpu, job in (("g-h100", "j-1"), ("g-l40s", "j-2")):
        st = fleet.device_state(gpu)
        fleet.commit_mode_change(SwitchReport(gpu, st.mode, GpuMode.RENTED, SwitchPhases(0, 0, 0, 0),
                                              0.0, T0, f"rented to job {job}"), st.generation,
                                 facility="lab", held_by=f"job:{job}")
    devices, facilities = from_fleet_spec(spec)
    devices = [replace(d, rental_occupancy=1.0) if d.kind == "gpu" else d for d in devices]
    # A demand-response event: the site may draw less than its two rented GPUs do flat out.
    facilities = [replace(f, capacity_w=1000.0) for f in facilities]  # they draw 1,312 W
    policy = Policy(devices, facilities, PolicyParams(dwell_s=0.0))
    clock = FakeClock(T0)
    told: list[tuple[str, str, str]] = []

    class Port(StoreBackedPort):
        def preempt(self, device_id: str, holder: str, reason: str) -> bool:
            told.append((device_id, holder, reason))
            return True

    svc = _service(spec, fleet, repo, ScriptedFeed([tick(T0), tick(T0 + 60 * S)]), policy,
                   Port(fleet), clock)
    r = svc.step(T0)
    assert [p.holder for p in r.preemptions] == [told[0][1]] and r.preemptions[0].ok
    assert told[0][0] in {"g-h100", "g-l40s"} and "power cap" in told[0][2]
    ev = fleet.events(kind="preemption")
    assert [(e.device_id, e.payload["holder"], e.payload["ok"]) for e in ev] == [
        (told[0][0], told[0][1], True)]
    # No decision ever names a held GPU, and the holder told to stop is not told again at once.
    assert not {d.device_id for d in r.decisions} & {"g-h100", "g-l40s"}
    clock.t = T0 + 60 * S
    assert svc.step(T0 + 60 * S).preemptions == [] and len(told) == 1
