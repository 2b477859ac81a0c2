"""The real Prometheus scraping a running platform (not the stand-in), twice.

On the embedded defaults: the fleet's, the optimizer's and the marketplace's own series arrive
through Ray's metrics agent, every fleet and economics panel returns data, the history API
reads this Prometheus, and a stalled optimizer fires its alert. With every part (PostgreSQL,
the chain on anvil, the validators, two agents) and work over HTTP: every marketplace and
system panel returns data."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import psutil

from hcp.config import Settings
from hcp.observability import stack
from hcp.observability.settings import OpsSettings
from tests.e2e.running import HCP, stop, token, wait_for_fleet
from tests.integration.ops.conftest import fast_rules, free_port
from tests.waiting import wait_until

log = logging.getLogger(__name__)
GRAFANA = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "dashboards"
VARIABLES = {"$__rate_interval": "1m", "$facility": ".*", "$model": ".*", "$route": ".*"}
# Of these two dashboards, the embedded defaults' test reads a few; the other test reads all
# (the chain, the notary, the agents and validators, PostgreSQL are not in the defaults).
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


@contextlib.contextmanager
def _platform(tmp_path: Path, extra: dict[str, str]) -> Iterator[tuple[dict[str, str], str, str]]:
    """`hcp run` (with ``extra`` env) and the real Prometheus scraping it: (env, API, Prometheus)."""
    home = tmp_path / "home"
    ray_tmp = tempfile.mkdtemp(prefix="hcp-e2e-ops-", dir="/tmp")
    api_port, prom_port = free_port(), free_port()
    env = dict(os.environ)
    for k in ("HCP_DATABASE_URL", "HCP_RAY_ADDRESS", "HCP_RAY_NAMESPACE"):
        env.pop(k, None)
    env.update(HCP_HOME=str(home), HCP_RAY_TEMP_DIR=ray_tmp, HCP_API_PORT=str(api_port),
               HCP_JWT_SECRET="e2e-ops-secret-" + "q" * 32, HCP_CHECKPOINT_SECONDS="1",
               HCP_OPTIMIZER_INTERVAL_SECONDS="2", HCP_OPS__PROMETHEUS_PORT=str(prom_port),
               PYTHONUNBUFFERED="1", **extra)
    ops = OpsSettings(prometheus_port=prom_port, scrape_interval="1s", evaluation_interval="1s")
    prom = stack.prometheus(Settings(home=home, ray_temp_dir=Path(ray_tmp), ops=ops),
                            rule_files=fast_rules(tmp_path), with_alertmanager=False)
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen([HCP, "run", "--no-live", "--duration", "500", "--refresh", "5"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_fleet(run, log_path)
        prom.start()
        yield env, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}"
    finally:
        try:
            prom.stop()
        finally:
            rc = stop(run)
    assert rc == 0, log_path.read_text()[-3000:]


def _wait_for_series(url: str, names: Iterable[str], timeout: float = 120) -> None:
    for series in names:
        try:
            wait_until(lambda s=series: _query(url, s), timeout=timeout, every=2)
        except AssertionError:
            have = sorted(r["metric"]["__name__"] for r in _query(
                url, 'count by (__name__) ({__name__=~"hcp_.+|http_.+|jobs_.+|up"})'))
            raise AssertionError(f"{series} never scraped; Prometheus has {have}; "
                                 f"targets {_query(url, 'up')}") from None


def _empty_panels(url: str, dashboards: Iterable[str],
                  skip: Callable[[str, str, str], bool]) -> list[str]:
    empty = []
    for dashboard in dashboards:
        for title, expr in _panels(dashboard):
            if skip(dashboard, title, expr):
                continue
            try:
                wait_until(lambda q=expr: _has_data(_query(url, q)), timeout=30, every=2)
            except AssertionError:
                empty.append(f"{dashboard}: {title}: {expr}")
    return empty


def test_prometheus_scrapes_the_platform_and_a_stalled_optimizer_fires(tmp_path: Path) -> None:
    stopped: int | None = None
    done = threading.Event()
    # No dwell: the optimizer switches back what the driver switches, so its decisions are
    # broadcast and acknowledged within every panel's minute.
    with _platform(tmp_path, {"HCP_OPTIMIZER__DWELL_SECONDS": "0"}) as (env, base, url):
        try:
            admin = {"Authorization": f"Bearer {token(env, 'admin', 'ops')}"}
            # Some work for the panels: a switch the device commits and one it refuses (RENTED
            # is entered for a rental's job only), a workload, API requests. Rate panels look
            # at the last minute, so the work goes on in the background while they are read.
            alice = token(env, "customer", "alice")
            r = httpx.post(f"{base}/api/v1/resources/devices/lab-gpu-1/mode", headers=admin,
                           json={"mode": "RENTED", "reason": "e2e ops"}, timeout=60)
            assert (r.status_code, r.json()["error"]) == (409, "invalid_transition"), r.text
            driver = threading.Thread(target=_drive, args=(base, admin, alice, done), daemon=True)
            driver.start()

            _wait_for_series(url, (
                "hcp_optimizer_steps_total", "hcp_workload_queue_wait_seconds_count",
                "hcp_device_power_watts", "hcp_escrow_conservation_residual",
                "hcp_facility_power_watts", "hcp_switch_failures_total", "http_requests_total",
                "hcp_switch_duration_seconds_count", "device:hcp_device_power_watts:avg_1m",
                "jobs_created_total"))
            [residual] = _query(url, "hcp_escrow_conservation_residual")
            assert residual["metric"]["backend"] == "sql" and float(residual["value"][1]) == 0
            # Exported at 0 before any job: NoJobsCreated can see the first hour without one.
            [created] = _query(url, "jobs_created_total")
            assert float(created["value"][1]) == 0

            empty = _empty_panels(url, ("fleet", "economics", "marketplace", "system"),
                                  lambda d, title, expr: d in CHOSEN and title not in CHOSEN[d])
            assert not empty, "\n".join(empty)

            # The history API reads this Prometheus (HCP_OPS__HISTORY_SOURCE=auto).
            h = httpx.get(f"{base}/api/v1/metrics/devices/lab-gpu-0", headers=admin, timeout=30)
            assert h.status_code == 200 and h.json()["source"] == "prometheus", h.text
            assert any(p["devices"] == 1 and p["power_w"] for p in h.json()["points"])

            # A stopped optimizer (SIGSTOP: alive, silent) is an alert within a few intervals.
            assert not _query(url, 'ALERTS{alertname="OptimizerStalled"}')
            stopped = _optimizer_pid(env["HCP_RAY_TEMP_DIR"])
            os.kill(stopped, signal.SIGSTOP)
            firing = wait_until(lambda: _query(
                url, 'ALERTS{alertname="OptimizerStalled", alertstate="firing"}'),
                timeout=120, every=2)
            assert firing[0]["metric"]["severity"] == "critical"
            os.kill(stopped, signal.SIGCONT)
            stopped = None
        finally:
            done.set()
            if stopped is not None:
                os.kill(stopped, signal.SIGCONT)


# The rest of the panels, on a platform with every part: PostgreSQL, the chain escrow on
# anvil (and its indexer), the oracle's validators, the agent running container workloads, and
# a provider's own agent the validators watch.
ORACLE_FAST = {"HCP_ORACLE__HEARTBEAT_INTERVAL_SECONDS": "1",
               "HCP_ORACLE__HEARTBEAT_GRACE_SECONDS": "2",
               "HCP_ORACLE__HEARTBEAT_MAX_AGE_SECONDS": "10", "HCP_ORACLE__TICK_SECONDS": "0.5",
               "HCP_ORACLE__CHALLENGE_POLL_SECONDS": "0.5",
               "HCP_ORACLE__CHALLENGE_INTERVAL_SECONDS": "3"}
PRICE = str(3600 * 10**18)  # a token a second
NODE, DAEMON = "e2e-ops-node", "e2e-ops-provider"  # the platform's agent and a provider's


class _Market:
    """A renter, a provider and a miner using the platform over HTTP, every few seconds."""

    def __init__(self, base: str, env: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        self.auth = {who: {"Authorization": f"Bearer {token(env, role, who)}"}
                     for who, role in (("ops", "admin"), ("alice", "customer"),
                                       ("prov-1", "provider"), ("flood", "customer"))}

    def call(self, method: str, path: str, who: str, **kw: Any) -> Any:
        r = self.http.request(method, path, headers=self.auth[who], **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def setup(self, archive: bytes) -> str:
        self.call("POST", "/api/v1/marketplace/ledger/mint", "ops",
                  json={"account": "alice", "amount": str(10**6 * 10**18), "op_id": "e2e-fund"})
        return str(self.call("POST", "/api/v1/images/upload", "alice",
                             files={"image": ("image.tar", archive, "application/x-tar")})["cid"])

    def rental_round(self, offer: str, cid: str, dispute: bool) -> None:
        job = self.call("POST", "/api/v1/marketplace/jobs", "alice",
                        json={"offer_id": offer, "image_cid": cid, "estimated_seconds": 60})["id"]
        self.call("POST", f"/api/v1/marketplace/jobs/{job}/accept", "prov-1")
        self.call("POST", f"/api/v1/marketplace/jobs/{job}/start", "prov-1")
        if dispute:
            self.call("POST", f"/api/v1/marketplace/jobs/{job}/dispute", "alice",
                      json={"reason": "e2e ops: the GPU was slow"})
        else:
            self.call("POST", f"/api/v1/marketplace/jobs/{job}/complete", "prov-1",
                      json={"usage_seconds": 30})

    def offer(self) -> str:
        return self.call("POST", "/api/v1/marketplace/offers", "prov-1", json={
            "gpu_model": "H100", "vcpu": 1, "memory_gb": 1, "storage_gb": 1,
            "price_per_hour": PRICE, "location": "lab"})["id"]

    def workload(self, cid: str) -> None:
        self.call("POST", "/api/v1/workloads", "alice", json={
            "type": "batch", "priority": 2, "duration_seconds": 60,
            "container": {"image_cid": cid, "command": ["/bin/sh", "-c", "echo e2e ops"]}})


def _gc(m: _Market) -> None:
    r = m.http.post("/api/v0/repo/gc", headers=m.auth["ops"])  # NDJSON lines, as Kubo's
    assert r.status_code == 200, r.text


def _drive_market(m: _Market, offer: str, cid: str, notary: Callable[[], None],
                  done: threading.Event) -> None:
    """Rental rounds by hand on ``offer`` (one in three disputed), claims, and now and then a
    container workload and a collection of the image node, until ``done``."""
    for i in itertools.count():
        steps: list[Callable[[], None]] = [
            lambda: m.rental_round(offer, cid, dispute=i % 3 == 2), notary]
        if i % 4 == 0:
            steps += [lambda: m.workload(cid), lambda: _gc(m)]
        for step in steps:
            try:
                step()
            except Exception:  # what the API answers is the panels' business, not this thread's
                log.warning("e2e ops driver", exc_info=True)
        if done.wait(3):
            return


def _provider_daemon(env: dict[str, str], base: str, offer: str, home: Path) -> subprocess.Popen[bytes]:
    """A third-party provider's `hcp agent run` renting out ``offer``: the validators watch
    its heartbeats and challenge it for the images of its running jobs."""
    denv = {**env, **ORACLE_FAST, "HCP_HOME": str(home), "HCP_AGENT__API_URL": base,
            "HCP_AGENT__TOKEN": token(env, "provider", "prov-1"),
            "HCP_AGENT__AGENT_ID": DAEMON, "HCP_AGENT__POLL_SECONDS": "0.5",
            "HCP_AGENT__SLOTS": json.dumps([{"offer_id": offer, "gpu_id": "gpu-0",
                                             "gpu_model": "H100"}])}
    for k in ("HCP_DATABASE_URL", "HCP_AGENT__WORKLOADS"):
        denv.pop(k, None)
    log_file = open(home.parent / "daemon.log", "ab")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([HCP, "agent", "run"], env=denv, stdout=log_file, stderr=log_file)


def _notary(m: _Market) -> Callable[[], None]:
    """A miner registered for a task, and a function submitting one verified claim (and one
    the notary refuses) each time it is called."""
    from tests.unit.notary import wat_modules as wat
    from tests.unit.notary.support import Miner, make_artifact

    miner = Miner()
    m.call("POST", "/api/v1/admin/miners", "ops",
           json={"miner_id": miner.miner_id, "public_key": miner.public_hex, "stake": 1000})
    ds = m.call("POST", "/api/v1/admin/datasets", "ops", files={"file": ("d.csv", b"a\n1\n")})
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    m.call("POST", "/api/v1/admin/tasks", "ops", json={
        "task_id": "e2e-ops", "metric": "accuracy", "performance_threshold": 0.9,
        "dataset_hash": ds["dataset_hash"], "max_training_time_seconds": 1,
        "expires_at": expires, "reward": 42})
    art = make_artifact(wat.score_wasm("0.9731"), {"lr": 0.05})

    def submit() -> None:
        data, files = miner.form(art, 0.9731, task_id="e2e-ops")
        assert m.http.post("/api/v1/submit", data=data, files=files).status_code == 202
        low, files = miner.form(art, 0.5, task_id="e2e-ops")  # under the task's threshold
        assert m.http.post("/api/v1/submit", data=low, files=files).status_code >= 400

    return submit


def test_every_panel_returns_data_on_a_platform_with_every_part(tmp_path: Path) -> None:
    from hcp.agent.spec import LABEL_AGENT
    from hcp.agent.tinyimage import build_tiny_image
    from tests.conftest import fresh_postgres_database
    from tests.integration.chain.conftest import running_anvil

    docker_client = docker.from_env()
    ref = f"hcp-e2e-ops:{uuid.uuid4().hex[:8]}"
    image_id = build_tiny_image(docker_client, ref)
    archive = b"".join(docker_client.images.get(ref).save(named=True))
    docker_client.images.remove(ref, force=True)  # the agents pull it by CID and load it
    done = threading.Event()
    daemon: subprocess.Popen[bytes] | None = None
    with fresh_postgres_database() as db, running_anvil() as chain:
        extra = {"HCP_DATABASE_URL": db, "HCP_CHAIN__RPC_URL": chain,
                 "HCP_CHAIN__DEPLOYMENT": str(tmp_path / "deployment.json"),
                 "HCP_CHAIN__WALLET_SEED": "e2e-ops-wallet-seed-0123456789",
                 "HCP_MARKETPLACE__ESCROW_BACKEND": "chain", "HCP_AGENT__WORKLOADS": "true",
                 "HCP_AGENT__AGENT_ID": NODE, "HCP_AGENT__POLL_SECONDS": "0.5",
                 "HCP_API_RATE_LIMIT": "300", "HCP_NOTARY__MINER_LIMIT": "100000",
                 "HCP_NOTARY__CLIENT_LIMIT": "100000", **ORACLE_FAST}
        try:
            with _platform(tmp_path, extra) as (env, base, url):
                m = _Market(base, env)
                cid = m.setup(archive)
                watched, by_hand = m.offer(), m.offer()
                (tmp_path / "provider").mkdir()
                daemon = _provider_daemon(env, base, watched, tmp_path / "provider")
                m.call("POST", "/api/v1/instances", "alice", json={
                    "gpu_id": watched, "image_cid": cid, "max_duration_seconds": 600,
                    "command": ["/bin/sh", "-c", "sleep 300"]})
                driver = threading.Thread(target=_drive_market,
                                          args=(m, by_hand, cid, _notary(m), done), daemon=True)
                driver.start()
                # One caller over its limit: refused with 429s, counted by route.
                codes = [m.http.get("/api/v1/marketplace/balances/me",
                                    headers=m.auth["flood"]).status_code for _ in range(320)]
                assert 429 in codes

                _wait_for_series(url, (
                    "jobs_completed_total", "hcp_chain_transaction_seconds_count",
                    "hcp_agent_image_pulls_total", "hcp_validator_heartbeats_total",
                    "hcp_notary_verified_total", "hcp_db_connections",
                    "hcp_image_store_gc_runs_total", "hcp_validator_challenges_total"),
                    timeout=240)
                empty = _empty_panels(url, ("marketplace", "system"),
                                      lambda d, t, expr: "hcp_validator_penalties_total" in expr)
                [residual] = _query(url, "hcp_escrow_conservation_residual")
                assert residual["metric"]["backend"] == "chain"
                assert float(residual["value"][1]) == 0

                # The provider's agent dies: past its missed heartbeats the quorum penalizes
                # it (downtime), and the penalties panel has its first series.
                daemon.kill()
                daemon.wait(10)
                _wait_for_series(url, ("hcp_validator_penalties_total",), timeout=120)
                empty += _empty_panels(url, ("marketplace",),
                                       lambda d, t, expr: "hcp_validator_penalties_total" not in expr)
                assert not empty, "\n".join(empty)
        finally:
            done.set()
            if daemon is not None and daemon.poll() is None:
                daemon.kill()
                daemon.wait(10)
            for agent in (NODE, f"{NODE}-wl", DAEMON):
                for c in docker_client.containers.list(
                        all=True, filters={"label": f"{LABEL_AGENT}={agent}"}):
                    c.remove(force=True)
            try:
                docker_client.images.remove(image_id, force=True)
            except docker.errors.ImageNotFound:
                pass
