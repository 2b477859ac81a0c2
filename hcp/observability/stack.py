"""Start and stop the real Prometheus and Alertmanager beside a running platform.

``hcp ops prometheus start`` (and the integration tests) use this: the committed
``ops/prometheus/prometheus.yml`` is rendered into the state directory with the real paths
(Ray's temp dir, the file-sd targets folder, the rule files) and ports, and the Debian
binaries run as daemons bound to 127.0.0.1 by default, data under HCP_HOME/ops.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hcp.config import Settings
from hcp.errors import ConfigError
from hcp.observability.settings import OpsSettings, client_host

log = logging.getLogger(__name__)

PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
DEFAULT_RAY_TEMP = Path("/tmp/ray")


def find_binary(names: tuple[str, ...]) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError(f"{names[0]} is not installed; run scripts/ensure-ops-tools.sh",
                      tool=names[0])


def ops_settings(settings: Settings) -> OpsSettings:
    return settings.ops


def state_dir(settings: Settings) -> Path:
    return ops_settings(settings).state_dir or settings.home / "ops"


def targets_dir(settings: Settings) -> Path:
    """Where hcp writes file-sd target lists (hcp.observability.discovery)."""
    return state_dir(settings) / "prometheus" / "targets"


def render_prometheus_config(ops: OpsSettings, *, targets: Path, ray_temp_dir: Path,
                             rule_files: list[Path] | None = None,
                             alertmanager: str | None = None) -> dict[str, Any]:
    """The committed prometheus.yml with this machine's paths, ports and intervals."""
    base = ops.ops_dir / "prometheus"
    config = yaml.safe_load((base / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = ops.scrape_interval
    if _seconds(ops.scrape_interval) < _seconds(config["global"]["scrape_timeout"]):
        config["global"]["scrape_timeout"] = ops.scrape_interval  # may not exceed the interval
    config["global"]["evaluation_interval"] = ops.evaluation_interval
    rules = rule_files if rule_files is not None else [base / r for r in config["rule_files"]]
    config["rule_files"] = [str(Path(r).resolve()) for r in rules]
    if alertmanager:
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    else:
        config.pop("alerting", None)
    for job in config["scrape_configs"]:
        if job["job_name"] == "ray":
            job["file_sd_configs"][0]["files"] = [
                str(ray_temp_dir / "session_latest" / "prom_metrics_service_discovery.json"),
                str(targets / "*.json"),
            ]
            job["file_sd_configs"][0]["refresh_interval"] = ops.scrape_interval
        elif job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"{ops.prometheus_host}:{ops.prometheus_port}"]}]
    return config


@dataclass
class Daemon:
    """One background server process, tracked by a pid file."""

    name: str
    argv: list[str]
    workdir: Path
    ready_url: str
    # Files written just before the process starts (its rendered config).
    files: dict[Path, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of this daemon if it runs (a reused pid of another program does not count)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except (OSError, ValueError):
            return None
        return pid if Path(os.fsdecode(cmdline)).name == Path(self.argv[0]).name else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> int:
        running = self.pid()
        if running is not None:
            return running
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                tail = self.log_tail()
                last = tail.splitlines()[-1] if tail else ""
                raise ConfigError(f"{self.name} exited at start (code {proc.returncode}): "
                                  f"{last} (log: {self.log_file})", tail=tail)
            if self.ready():
                log.info("%s ready at %s (pid %d)", self.name, self.ready_url, proc.pid)
                return proc.pid
            time.sleep(0.2)
        self.stop()
        raise ConfigError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log_file}")

    def stop(self, timeout: float = 15.0) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end and Path(f"/proc/{pid}").exists():
            try:  # reap it when it is our own child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def prometheus(settings: Settings, *, rule_files: list[Path] | None = None,
               with_alertmanager: bool = True) -> Daemon:
    """The Prometheus daemon of this platform, its config rendered under the state dir."""
    ops = ops_settings(settings)
    workdir = state_dir(settings) / "prometheus"
    targets = targets_dir(settings)
    config = render_prometheus_config(
        ops, targets=targets, ray_temp_dir=settings.ray.temp_dir or DEFAULT_RAY_TEMP,
        rule_files=rule_files,
        alertmanager=f"{ops.alertmanager_host}:{ops.alertmanager_port}" if with_alertmanager else None)
    config_path = workdir / "prometheus.yml"
    argv = [find_binary(PROMETHEUS_BINARIES), f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--storage.tsdb.retention.time={ops.retention}",
            f"--web.listen-address={ops.prometheus_host}:{ops.prometheus_port}",
            "--web.enable-lifecycle"]
    return Daemon("prometheus", argv, workdir,
                  f"{ops.prometheus_url}/-/ready",
                  files={config_path: yaml.safe_dump(config, sort_keys=False),
                         targets / ".keep": ""})


def alertmanager(settings: Settings) -> Daemon:
    ops = ops_settings(settings)
    workdir = state_dir(settings) / "alertmanager"
    argv = [find_binary(ALERTMANAGER_BINARIES),
            f"--config.file={ops.ops_dir / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={ops.alertmanager_host}:{ops.alertmanager_port}",
            # A single instance: no gossip port (it would bind on every interface).
            "--cluster.listen-address="]
    return Daemon("alertmanager", argv, workdir,
                  f"http://{client_host(ops.alertmanager_host)}:{ops.alertmanager_port}/-/ready")


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    unit = "ms" if duration.endswith("ms") else duration[-1]
    return float(duration[: -len(unit)]) * units[unit]


