"""The real Prometheus scraping a running platform (not the stand-in): the fleet's, the
optimizer's and the marketplace's own series arrive through Ray's metrics agent, the fleet and
economics dashboards' panels (and the marketplace's and system's over what a fresh platform
records) return data, the history API reads this Prometheus,
and a stalled optimizer fires its alert."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import psutil

from hcp.config import Settings
from hcp.observability import stack
from hcp.observability.settings import OpsSettings
from tests.e2e.running import HCP, stop, token, wait_for_fleet
from tests.integration.ops.conftest import fast_rules, free_port
from tests.waiting import wait_until

GRAFANA = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "dashboards"
VARIABLES = {"$__rate_interval": "1m", "$facility": ".*", "$model": ".*", "$route": ".*"}
# Panel queries over an event this test may not cause within a panel's last minute: a share
# found by the simulated miner, mining preempted for a workload, an optimizer decision (its
# dwell time holds devices in their modes).
UNCERTAIN = ("hcp_device_shares_total", "hcp_workload_preemptions_total",
             "hcp_optimizer_apply_latency_seconds")
# Of these two dashboards, the panels over what a fresh platform on the embedded defaults
# records (docs/operations.md, "What the platform records"): not the job counters (a series
# appears with its first job), the chain (none is configured), the image store's peers and
# GC, the notary (no claim), the agent and validators' rentals, PostgreSQL's connections.
CHOSEN = {"marketplace": {"Escrow conservation residual (must be 0)", "Locked in escrow",
                          "Image store size and pins"},
          "system": {"Requests per second by route", "Requests per second by status",
                     "Latency p50 / p95 / p99", "Scrape targets up"}}


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(r.get("value", [0, "NaN"])[1] not in ("NaN", "+Inf", "-Inf") for r in result)


def _panels(name: str) -> list[tuple[str, str]]:
    d = json.loads((GRAFANA / f"{name}.json").read_text())
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"]
            for k, v in VARIABLES.items():
                expr = expr.replace(k, v)
            out.append((p["title"], expr))
    return out


def _drive(base: str, admin: dict[str, str], customer: str, done: threading.Event) -> None:
    """Switch lab-gpu-0 back and forth, refuse a switch, read the fleet and run a short
    workload, every few seconds until ``done``; what the API answers is not this thread's test."""
    mine = {"Authorization": f"Bearer {customer}"}
    modes = itertools.cycle(("INFERENCE", "MINING"))
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in itertools.count():
            if done.wait(3):
                return
            try:
                http.post("/api/v1/resources/devices/lab-gpu-0/mode", headers=admin,
                          json={"mode": next(modes), "reason": "e2e ops"})
                http.post("/api/v1/resources/devices/lab-gpu-1/mode", headers=admin,
                          json={"mode": "RENTED", "reason": "e2e ops"})
                http.get("/api/v1/resources", headers=admin)
                if i % 5 == 0:
                    http.post("/api/v1/workloads", headers=mine,
                              json={"type": "batch", "priority": 2, "duration_seconds": 5})
            except httpx.HTTPError:
                continue


def _optimizer_pid(temp_dir: str) -> int:
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if ("OptimizerActor" in " ".join(proc.info["cmdline"] or [])
                    and proc.environ().get("HCP_RAY_TEMP_DIR") == temp_dir):
                return int(proc.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    raise AssertionError("no optimizer actor process")


def test_prometheus_scrapes_the_platform_and_a_stalled_optimizer_fires(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ray_tmp = tempfile.mkdtemp(prefix="hcp-e2e-ops-", dir="/tmp")
    api_port, prom_port = free_port(), free_port()
    env = dict(os.environ)
    for k in ("HCP_DATABASE_URL", "HCP_RAY_ADDRESS", "HCP_RAY_NAMESPACE"):
        env.pop(k, None)
    env.update(HCP_HOME=str(home), HCP_RAY_TEMP_DIR=ray_tmp, HCP_API_PORT=str(api_port),
               HCP_JWT_SECRET="e2e-ops-secret-" + "q" * 32, HCP_CHECKPOINT_SECONDS="1",
               HCP_OPTIMIZER_INTERVAL_SECONDS="2", HCP_OPS__PROMETHEUS_PORT=str(prom_port),
               PYTHONUNBUFFERED="1")
    ops = OpsSettings(prometheus_port=prom_port, scrape_interval="1s", evaluation_interval="1s")
    prom = stack.prometheus(Settings(home=home, ray_temp_dir=Path(ray_tmp), ops=ops),
                            rule_files=fast_rules(tmp_path), with_alertmanager=False)
    url = f"http://127.0.0.1:{prom_port}"
    base = f"http://127.0.0.1:{api_port}"
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen([HCP, "run", "--no-live", "--duration", "400", "--refresh", "5"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    stopped: int | None = None
    done = threading.Event()
    try:
        wait_for_fleet(run, log_path)
        prom.start()
        admin = {"Authorization": f"Bearer {token(env, 'admin', 'ops')}"}
        # Some work for the panels: a switch the device commits and one it refuses (RENTED is
        # entered for a rental's job only), a workload, API requests. Rate panels look at the
        # last minute, so the work goes on in the background while they are read.
        alice = token(env, "customer", "alice")
        r = httpx.post(f"{base}/api/v1/resources/devices/lab-gpu-1/mode", headers=admin,
                       json={"mode": "RENTED", "reason": "e2e ops"}, timeout=60)
        assert (r.status_code, r.json()["error"]) == (409, "invalid_transition"), r.text
        driver = threading.Thread(target=_drive, args=(base, admin, alice, done), daemon=True)
        driver.start()

        for series in ("hcp_optimizer_steps_total", "hcp_workload_queue_wait_seconds_count", "hcp_device_power_watts",
                       "hcp_escrow_conservation_residual",
                       "hcp_facility_power_watts", "hcp_switch_failures_total",
                       "http_requests_total", "hcp_switch_duration_seconds_count",
                       "device:hcp_device_power_watts:avg_1m"):
            try:
                wait_until(lambda s=series: _query(url, s), timeout=120, every=2)
            except AssertionError:
                names = sorted(r["metric"]["__name__"] for r in _query(
                    url, 'count by (__name__) ({__name__=~"hcp_.+|http_.+|jobs_.+|up"})'))
                raise AssertionError(f"{series} never scraped; Prometheus has {names}; "
                                     f"targets {_query(url, 'up')}") from None
        [residual] = _query(url, "hcp_escrow_conservation_residual")
        assert residual["metric"]["backend"] == "sql" and float(residual["value"][1]) == 0

        empty = []
        for dashboard in ("fleet", "economics", "marketplace", "system"):
            for title, expr in _panels(dashboard):
                if (any(name in expr for name in UNCERTAIN)
                        or (dashboard in CHOSEN and title not in CHOSEN[dashboard])):
                    continue
                try:
                    wait_until(lambda q=expr: _has_data(_query(url, q)), timeout=30, every=2)
                except AssertionError:
                    empty.append(f"{dashboard}: {title}: {expr}")
        assert not empty, "\n".join(empty)

        # The history API reads this Prometheus (HCP_OPS__HISTORY_SOURCE=auto).
        h = httpx.get(f"{base}/api/v1/metrics/devices/lab-gpu-0", headers=admin, timeout=30)
        assert h.status_code == 200 and h.json()["source"] == "prometheus", h.text
        assert any(p["devices"] == 1 and p["power_w"] for p in h.json()["points"])

        # A stopped optimizer (SIGSTOP: alive, silent) is an alert within a few intervals.
        assert not _query(url, 'ALERTS{alertname="OptimizerStalled"}')
        stopped = _optimizer_pid(ray_tmp)
        os.kill(stopped, signal.SIGSTOP)
        firing = wait_until(lambda: _query(
            url, 'ALERTS{alertname="OptimizerStalled", alertstate="firing"}'), timeout=120, every=2)
        assert firing[0]["metric"]["severity"] == "critical"
        os.kill(stopped, signal.SIGCONT)
        stopped = None
    finally:
        done.set()
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        prom.stop()
        rc = stop(run)
    assert rc == 0, log_path.read_text()[-3000:]
