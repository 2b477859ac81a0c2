"""Property: whatever the decisions and wherever the optimizer crashes mid-broadcast, no decision
reaches a device twice, every decision ends with exactly one outcome, and every device ends in
the mode of the last decision it applied."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcp.economics.optimizer import OptimizerRepository, OptimizerService
from hcp.economics.optimizer.economics import FleetProfit
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

DEVICES = {"g-h100": ("MINING", "INFERENCE", "IDLE"), "g-l40s": ("MINING", "INFERENCE", "IDLE"),
           "s21-0": ("MINING", "CURTAILED")}
STEP = timedelta(seconds=5)

wants = st.fixed_dictionaries({}, optional={d: st.sampled_from(m) for d, m in DEVICES.items()})
crash = st.one_of(st.none(), st.integers(0, 2))  # None: the step completes; k: dies after k orders


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(wants, crash), min_size=1, max_size=6))
def test_crashes_never_double_apply(plan: list[tuple[dict[str, str], int | None]]) -> None:
    with tempfile.TemporaryDirectory(prefix="hcp-opt-prop-") as tmp:
        engine = connect(f"sqlite:///{Path(tmp) / 'hcp.db'}")
        try:
            _run(engine, plan)
        finally:
            engine.dispose()


def _run(engine: sa.Engine, plan: list[tuple[dict[str, str], int | None]]) -> None:
    migrate(engine)
    spec = parse_fleet_spec(SPEC, "prop")
    fleet = FleetRepository(engine)
    fleet.sync_fleet(spec)
    repo = OptimizerRepository(engine)
    times = [T0 + i * STEP for i in range(len(plan))]
    script = {t: w for t, (w, _) in zip(times, plan)}
    ticks = [tick(t) for t in times]
    ports: list[StoreBackedPort] = []
    clock = FakeClock(T0)

    def start() -> OptimizerService:  # a (re)started optimizer: fresh objects, same store, feed from the top
        ports.append(StoreBackedPort(fleet))
        return OptimizerService(feed=ScriptedFeed(ticks), policy=ScriptedPolicy(script),
                                profit=FleetProfit.from_fleet_spec(spec), port=ports[-1], repo=repo,
                                clock=clock, apply_timeout_s=7.0)

    svc = start()
    for t, (_, crash_after) in zip(times, plan):
        clock.t = ports[-1].now = t
        ports[-1].crash_after = crash_after
        while True:  # a restarted optimizer first skips the ticks already processed
            try:
                r = svc.step(t)
            except Crash:
                svc = start()
                break
            if r.skipped != "already_processed" or r.tick_at == t:
                break
    clock.t = times[-1] + 10 * STEP
    svc.reconcile(clock.t)

    sent = [d for p in ports for d in p.sent]
    assert len(sent) == len(set(sent))
    assert repo.pending() == []
    rows = repo.decisions(limit=1000)
    assert len({d.decision_id for d, _ in rows}) == len(rows) and all(o is not None for _, o in rows)
    applied = [d for d, o in rows if o is not None and o.status.applied]
    with engine.connect() as c:
        reasons = c.execute(sa.text("SELECT reason FROM events WHERE kind = 'mode_change'")).scalars().all()
    per_decision = Counter(x.split(" ")[1] for x in reasons)
    assert set(per_decision) == {d.decision_id for d in applied} and set(per_decision.values()) <= {1}
    for dev in DEVICES:
        last = next((d for d in applied if d.device_id == dev), None)  # newest first
        initial = "MINING" if dev.startswith("s") else "IDLE"
        assert fleet.device_state(dev).mode.value == (last.to_mode if last else initial)
