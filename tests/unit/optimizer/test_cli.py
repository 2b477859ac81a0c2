"""`hcp decisions` and the live view's decisions table, over a store the optimizer wrote."""

from __future__ import annotations

import json

from rich.console import Console
from typer.testing import CliRunner

from hcp.economics.optimizer import OptimizerRepository, OptimizerService, outcome_dict
from hcp.economics.optimizer.economics import FleetProfit
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.store import connect, migrate
from hcp_cli.main import app
from hcp_cli.views import decisions_table
from tests.unit.optimizer.fakes import (
    SPEC,
    T0,
    FakeClock,
    ScriptedFeed,
    ScriptedPolicy,
    StoreBackedPort,
    tick,
)


def test_decisions_command_and_view(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HCP_HOME", str(tmp_path))
    monkeypatch.delenv("HCP_DATABASE_URL", raising=False)
    engine = connect(f"sqlite:///{tmp_path / 'hcp.db'}")
    migrate(engine)
    spec = parse_fleet_spec(SPEC, "unit")
    fleet = FleetRepository(engine)
    fleet.sync_fleet(spec)
    repo = OptimizerRepository(engine)
    svc = OptimizerService(feed=ScriptedFeed([tick(T0)]), policy=ScriptedPolicy({T0: {"g-h100": "INFERENCE"}}),
                           profit=FleetProfit.from_fleet_spec(spec), port=StoreBackedPort(fleet),
                           repo=repo, clock=FakeClock(T0))
    svc.step(T0)

    out = CliRunner().invoke(app, ["decisions", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)  # logs go to stderr
    assert [(r["device_id"], r["from_mode"], r["to_mode"], r["status"]) for r in rows] == [
        ("g-h100", "IDLE", "INFERENCE", "APPLIED")]

    console = Console(width=200, record=True)
    console.print(decisions_table([outcome_dict(d, o) for d, o in repo.decisions()]))
    text = console.export_text()
    assert "g-h100" in text and "APPLIED" in text and "INFERENCE" in text
