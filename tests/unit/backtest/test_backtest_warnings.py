"""Input warnings travel with the backtest's result: in the summary, the table and ``--json``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hcp.config import DEFAULT_FLEET_SPEC
from hcp.economics.backtest import run_backtest
from hcp.economics.market import MarketHistory
from hcp.fleet.spec import load_fleet_spec
from hcp_cli.main import app
from tests.unit.backtest import defects

POLICIES = ("greedy", "hcp")


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hcp.economics.market.quality")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """April to June 2022 (short runs) and the difficulty file cut after 2022-03-31."""
    d = tmp_path_factory.mktemp("data")
    window, _ = defects.power_without(d / "power.csv", ("2021-", "2022-01", "2022-02", "2022-03"))
    return {"power": window, "difficulty": defects.difficulty_through(d / "difficulty.csv", "2022-03-31"),
            "btc_gap": defects.btc_without_day(d / "btc.csv", "2022-05-02")}


def test_projection_keeps_the_backtest_close_to_the_full_file(files: dict[str, Path]) -> None:
    spec = load_fleet_spec(DEFAULT_FLEET_SPEC)

    def profits(**kw: object) -> dict[str, float]:
        res = run_backtest(MarketHistory.load(power=files["power"], **kw), spec, policies=POLICIES)
        return {n: o.profit_usd for n, o in res.outcomes.items()}

    full = profits()
    held = profits(difficulty=files["difficulty"])
    projected = profits(difficulty=files["difficulty"], difficulty_beyond="project")
    for name in POLICIES:
        # Holding 2022-03's difficulty through June overstates what mining earned.
        assert held[name] > full[name]
        assert abs(projected[name] - full[name]) < abs(held[name] - full[name]) / 5, name


def test_summary_carries_the_warnings(files: dict[str, Path]) -> None:
    history = MarketHistory.load(power=files["power"], btc_daily=files["btc_gap"])
    res = run_backtest(history, load_fleet_spec(DEFAULT_FLEET_SPEC), policies=("hcp",))
    warnings = res.summary()["warnings"]
    assert [w["kind"] for w in warnings] == [i.kind.value for i in history.issues]
    missing = next(w for w in warnings if w["kind"] == "missing_days")
    assert missing == {**missing, "series": "btc_daily", "action": "dropped", "hours": 24,
                       "where": ["2022-05-02"]}
    assert len(res.times) == len(history) and all(t.date().isoformat() != "2022-05-02" for t in res.times)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["backtest", *args])
    return result.exit_code, result.stdout


def test_cli_json_reports_warnings_and_strict_refuses(files: dict[str, Path]) -> None:
    power, difficulty = str(files["power"]), str(files["difficulty"])
    code, out = _cli("--power", power, "--difficulty", difficulty, "--strict")
    assert code == 2
    assert "market_data_gap" in out and "difficulty file's last epoch" in out
    code, out = _cli("--power", power, "--difficulty", difficulty, "--difficulty-beyond", "project",
                     "--strict", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert set(body) == {"policies", "assumptions", "warnings"}
    flag = next(w for w in body["warnings"] if w["kind"] == "difficulty_beyond_file")
    assert flag["action"] == "projected" and flag["hours"] > 0
    assert body["assumptions"]["strict"] is True
    assert body["assumptions"]["hours_beyond_difficulty_file"] == flag["hours"]


def test_cli_table_prints_the_warnings_after_the_figures(files: dict[str, Path]) -> None:
    code, out = _cli("--power", str(files["power"]), "--btc-daily", str(files["btc_gap"]))
    assert code == 0, out
    table, _, tail = out.partition("Input warnings")
    assert "perfect_foresight" in table
    assert "dropped" in tail and "2022-05-02" in tail and "24 hour(s)" in tail
    assert "filled" in tail and "2022-05-03" in tail
