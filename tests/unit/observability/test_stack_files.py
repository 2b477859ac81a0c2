"""The pure parts of the Prometheus stack: file-sd target lists and the rendered config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcp.config import Settings
from hcp.errors import ConfigError
from hcp.observability import stack
from hcp.observability.discovery import ray_targets, static_targets, write_targets
from hcp.observability.settings import OpsSettings


def test_ray_targets_list_live_nodes_metrics_ports() -> None:
    nodes = [
        {"NodeManagerAddress": "10.0.0.2", "MetricsExportPort": 8080, "Alive": True},
        {"NodeManagerAddress": "10.0.0.1", "MetricsExportPort": 8080, "Alive": True},
        {"NodeManagerAddress": "10.0.0.3", "MetricsExportPort": 8080, "Alive": False},
        {"NodeManagerAddress": "10.0.0.4", "MetricsExportPort": -1, "Alive": True},
        {"NodeManagerAddress": "fd00::5", "MetricsExportPort": 9100, "alive": True},
    ]
    assert ray_targets(nodes) == [{"targets": ["10.0.0.1:8080", "10.0.0.2:8080", "[fd00::5]:9100"],
                                   "labels": {"job": "ray"}}]


def test_targets_are_written_atomically_and_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "targets" / "ray.json"
    groups = static_targets(["127.0.0.1:9000"])
    assert write_targets(path, groups) is True
    assert json.loads(path.read_text()) == groups
    assert write_targets(path, groups) is False
    assert write_targets(path, static_targets(["127.0.0.1:9001"])) is True
    assert [p.name for p in path.parent.iterdir()] == ["ray.json"]


def test_the_config_is_rendered_with_this_machines_paths_and_ports(tmp_path: Path) -> None:
    ops = OpsSettings(prometheus_port=19090, scrape_interval="2s", evaluation_interval="5s")
    config = stack.render_prometheus_config(ops, targets=tmp_path / "t", ray_temp_dir=Path("/r"),
                                            alertmanager="127.0.0.1:19093")
    assert config["global"]["scrape_interval"] == "2s"
    assert config["global"]["scrape_timeout"] == "2s"  # never above the interval
    assert config["global"]["evaluation_interval"] == "5s"
    assert all(Path(r).is_absolute() and Path(r).is_file() for r in config["rule_files"])
    ray_job, self_job = config["scrape_configs"]
    assert ray_job["file_sd_configs"][0]["files"] == [
        "/r/session_latest/prom_metrics_service_discovery.json", f"{tmp_path}/t/*.json"]
    assert self_job["static_configs"] == [{"targets": ["127.0.0.1:19090"]}]
    quiet = stack.render_prometheus_config(OpsSettings(), targets=tmp_path, ray_temp_dir=Path("/r"))
    assert "alerting" not in quiet and quiet["global"]["scrape_timeout"] == "10s"


@pytest.fixture
def binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemons' argv without needing the binaries installed (unit tests need no tools)."""
    monkeypatch.setattr(stack, "find_binary", lambda names: f"/usr/bin/{names[0]}")


@pytest.mark.usefixtures("binaries")
def test_the_daemons_bind_loopback_keep_180_days_and_live_under_hcp_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    prom = stack.prometheus(settings)
    argv = " ".join(prom.argv)
    assert "--storage.tsdb.retention.time=180d" in argv
    assert "--web.listen-address=127.0.0.1:9090" in argv
    assert f"--storage.tsdb.path={tmp_path}/ops/prometheus/data" in argv
    am = stack.alertmanager(settings)
    assert "--web.listen-address=127.0.0.1:9093" in am.argv and "--cluster.listen-address=" in am.argv
    assert prom.pid() is None and am.pid() is None  # nothing started by building them
    assert not (tmp_path / "ops").exists()


@pytest.mark.usefixtures("binaries")
def test_a_stale_pid_file_is_not_taken_for_a_running_daemon(tmp_path: Path) -> None:
    prom = stack.prometheus(Settings(home=tmp_path))
    prom.workdir.mkdir(parents=True)
    prom.pid_file.write_text("1")  # pid 1 is not Prometheus
    assert prom.pid() is None
    assert prom.stop() is False and not prom.pid_file.exists()


def test_a_missing_binary_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack.shutil, "which", lambda _name: None)
    with pytest.raises(ConfigError, match="ensure-ops-tools.sh"):
        stack.find_binary(stack.PROMETHEUS_BINARIES)
