"""`hcp ops prometheus ...` is registered and reports daemons that are not running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hcp.observability import stack
from hcp_cli.main import app


def test_status_and_stop_when_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCP_HOME", str(tmp_path))
    monkeypatch.setattr(stack, "find_binary", lambda names: f"/usr/bin/{names[0]}")
    runner = CliRunner()
    status = runner.invoke(app, ["ops", "prometheus", "status", "--json"])
    assert status.exit_code == 0, status.output
    rows = json.loads(status.output)
    assert [(r["name"], r["pid"]) for r in rows] == [("prometheus", None), ("alertmanager", None)]
    assert rows[0]["url"] == "http://127.0.0.1:9090"
    stop = runner.invoke(app, ["ops", "prometheus", "stop"])
    assert stop.exit_code == 0
    assert "prometheus: not running" in stop.output and "alertmanager: not running" in stop.output
