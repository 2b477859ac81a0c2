"""`hcp backtest` as a user runs it: table, --json, --plot, a window of the series, the sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hcp.economics.market.history import packaged

HCP = str(Path(sys.executable).parent / "hcp")
POLICIES = {"always_mine", "always_inference", "always_rent", "greedy", "hcp", "hcp_rent",
            "perfect_foresight"}


def _hcp(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               HCP_RAY_TEMP_DIR=tempfile.mkdtemp(prefix="hcp-bt-", dir="/tmp"))
    env.pop("HCP_RAY_ADDRESS", None)
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([HCP, "backtest", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def power_window(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """March 2022 only: the same file format, a smaller window (keeps the e2e runs short)."""
    lines = packaged("electricity_be_hourly_2022h1.csv").read_text().splitlines()
    out = tmp_path_factory.mktemp("data") / "power_march.csv"
    out.write_text("\n".join([lines[0], *[x for x in lines[1:] if x.startswith("2022-03")]]) + "\n")
    return out


def test_json_on_the_packaged_real_series() -> None:
    res = _hcp("--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # exactly one JSON object
    assert set(out) == {"policies", "assumptions", "warnings"}
    # The packaged series have no gap; the one warning is the documented blocks estimate.
    assert [w["kind"] for w in out["warnings"]] == ["blocks_estimated"]
    pol = out["policies"]
    assert set(pol) == POLICIES
    assert all(set(v) == {"profit_usd", "switches", "pct_of_optimum"} for v in pol.values())
    assert pol["perfect_foresight"]["pct_of_optimum"] == 100.0
    assert pol["hcp"]["pct_of_optimum"] >= 97.0
    assert all(pol["hcp"]["profit_usd"] > pol[p]["profit_usd"]
               for p in ("always_mine", "always_inference", "greedy"))
    assert out["assumptions"]["eur_usd"] == 1.0934


def test_table_plot_and_explicit_files(tmp_path: Path, power_window: Path) -> None:
    png = tmp_path / "modes.png"
    res = _hcp("--btc-daily", str(packaged("btc_daily_2021_2022h1.csv")),
               "--difficulty", str(packaged("btc_difficulty_epochs_to_2022h1.csv")),
               "--power", str(power_window), "--gpu-prices", str(packaged("gpu_rental_prices_2024.csv")),
               "--eur-usd", "1.05", "--plot", str(png))
    assert res.returncode == 0, res.stderr
    for name in POLICIES:
        assert name in res.stdout
    assert "% of optimum" in res.stdout and '"eur_usd": 1.05' in res.stdout
    assert "744 hours" in res.stdout  # March 2022
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_bad_input_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "power.csv"
    bad.write_text("time_utc,price\n")
    res = _hcp("--power", str(bad))
    assert res.returncode == 2
    assert "market_data_invalid" in res.stdout
    assert _hcp("--eur-usd", "-1").returncode == 2


def test_sweep_runs_as_ray_tasks(power_window: Path) -> None:
    res = _hcp("--power", str(power_window), "--json", "--sweep", "--sweep-thresholds", "0,5",
               "--sweep-dwell-hours", "1", timeout=420)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    grid = {(r["threshold_pct"], r["dwell_hours"]) for r in out["sweep"]}
    assert grid == {(0.0, 1.0), (5.0, 1.0)}
    assert all(0 < r["pct_of_optimum"] <= 100.0 for r in out["sweep"])
    # The grid point with the main run's parameters (5 %, 1 h) reproduces its figure.
    same = next(r for r in out["sweep"] if r["threshold_pct"] == 5.0)
    assert same["profit_usd"] == out["policies"]["hcp"]["profit_usd"]
