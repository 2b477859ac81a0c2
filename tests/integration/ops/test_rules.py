"""The real promtool and amtool over hcp's Prometheus and Alertmanager files.

The test command installs the tools (scripts/ensure-ops-tools.sh); a missing tool fails these
tests, it never skips them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import prometheus_client
import pytest
import yaml

from hcp.config import Settings
from hcp.observability.settings import OpsSettings
from hcp.observability.stack import render_prometheus_config

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "ops" / "prometheus"
ALERTMANAGER = ROOT / "ops" / "alertmanager" / "alertmanager.yml"
RULE_TESTS = sorted((PROM / "tests").glob("*.test.yml"))


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: run scripts/ensure-ops-tools.sh"
    return path


def run(*argv: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, input=stdin, cwd=cwd, timeout=120,
                          check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def test_promtool_checks_the_committed_config_and_its_rules() -> None:
    out = run(tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert "SUCCESS: 2 rule files found" in out


def test_promtool_checks_the_config_rendered_for_a_machine(tmp_path: Path) -> None:
    ops = OpsSettings(prometheus_port=19090, retention="180d")
    config = render_prometheus_config(ops, targets=tmp_path / "targets",
                                      ray_temp_dir=Path("/tmp/hcp-ray-x"),
                                      alertmanager="127.0.0.1:19093")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    run(tool("promtool"), "check", "config", str(path))
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"]
    files = config["scrape_configs"][0]["file_sd_configs"][0]["files"]
    assert files == ["/tmp/hcp-ray-x/session_latest/prom_metrics_service_discovery.json",
                     f"{tmp_path}/targets/*.json"]


def test_promtool_checks_the_rule_files() -> None:
    rules = sorted((PROM / "rules").glob("*.yml"))
    out = run(tool("promtool"), "check", "rules", *map(str, rules))
    assert out.count("SUCCESS") == len(rules)


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_of_the_rules_pass(path: Path) -> None:
    out = run(tool("promtool"), "test", "rules", path.name, cwd=path.parent)
    assert "SUCCESS" in out


def test_the_catalogues_exposition_passes_promtools_lint() -> None:
    from tests.integration.ops.standin import StandIn

    prometheus_client.disable_created_metrics()
    try:
        standin = StandIn()
        standin.tick()
        text = standin.sink.exposition().decode()
    finally:
        prometheus_client.enable_created_metrics()
    assert run(tool("promtool"), "check", "metrics", stdin=text).strip() == ""


def test_amtool_checks_the_alertmanager_config() -> None:
    out = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert "SUCCESS" in out and "2 receivers" in out


def test_every_alert_routes_to_the_receiver_of_its_severity() -> None:
    alerts = [r for g in yaml.safe_load((PROM / "rules" / "alerts.yml").read_text())["groups"]
              for r in g["rules"]]
    for alert in alerts:
        labels = alert["labels"]
        run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
            f"--verify.receivers={labels['severity']}", f"alertname={alert['alert']}",
            f"severity={labels['severity']}", f"area={labels['area']}")


def test_the_default_settings_keep_180_days() -> None:
    assert Settings().ops.retention == "180d"
