"""RaySink through Ray's real metrics agent into the real Prometheus: an actor records by
catalogue name, hcp writes the node list as a file-sd target, Prometheus scrapes the agent and
stores the catalogue's names (Ray's ``ray_`` prefix taken off)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcp.config import Settings
from hcp.observability import stack
from hcp.observability.discovery import ray_targets, write_targets
from hcp.observability.settings import OpsSettings
from tests.integration.ops.conftest import OpsStack, free_port
from tests.waiting import wait_until


@pytest.fixture
def prometheus_on_ray(ray_session: None, tmp_path: Path) -> Iterator[OpsStack]:
    import ray

    ops = OpsSettings(prometheus_port=free_port(), scrape_interval="1s", evaluation_interval="1s")
    settings = Settings(home=tmp_path, ray_temp_dir=tmp_path / "no-ray-dashboard", ops=ops)
    groups = ray_targets(ray.nodes())
    assert groups[0]["targets"], ray.nodes()
    write_targets(stack.targets_dir(settings) / "ray.json", groups)
    prom = stack.prometheus(settings, with_alertmanager=False)
    prom.start()
    try:
        yield OpsStack(prometheus=f"http://127.0.0.1:{ops.prometheus_port}", alertmanager="",
                       standin="", settings=settings)
    finally:
        prom.stop()


def test_an_actor_records_through_ray_and_prometheus_stores_catalogue_names(
        prometheus_on_ray: OpsStack) -> None:
    import ray

    @ray.remote(num_cpus=0)
    class Recorder:
        def __init__(self) -> None:
            from actors.metrics_sink import RaySink

            self.sink = RaySink()

        def worker(self) -> str:
            return ray.get_runtime_context().get_worker_id()

        def record(self) -> str:
            from hcp.observability.spec import MetricUsageError

            self.sink.inc("jobs_created_total", 2)
            self.sink.inc("hcp_chain_transactions_pending", 3)
            self.sink.inc("hcp_chain_transactions_pending", -1)
            self.sink.set_state("hcp_dependency_breaker_state", "state", "open",
                                dependency="redis")
            self.sink.observe("http_request_duration_seconds", 0.3, route="/api/v1/x",
                              method="GET")
            try:
                self.sink.inc("http_requests_total", route="/api/v1/x")
            except MetricUsageError:
                return "checked"
            return "unchecked"

    recorder = Recorder.remote()  # type: ignore[attr-defined]
    assert ray.get(recorder.record.remote(), timeout=60) == "checked"
    recorded_at = time.monotonic()

    node = next(n for n in ray.nodes() if n["Alive"])
    agent = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"

    def exported() -> bool:
        with urllib.request.urlopen(agent, timeout=5) as r:
            return "ray_jobs_created_total{" in r.read().decode()

    wait_until(exported, timeout=90, every=1.0)

    prom = prometheus_on_ray
    # This recorder's series only: the platforms of other tests in this Ray session (their
    # ledger, ingress and breakers) record the same names from their own processes.
    me = f'WorkerId="{ray.get(recorder.worker.remote(), timeout=60)}"'
    created = wait_until(lambda: prom.query(f"jobs_created_total{{{me}}}"), timeout=60)
    assert float(created[0]["value"][1]) == 2
    assert created[0]["metric"]["job"] == "ray"
    pending = wait_until(lambda: prom.query(f"hcp_chain_transactions_pending{{{me}}}"), timeout=30)
    assert float(pending[0]["value"][1]) == 2
    states = {r["metric"]["state"]: float(r["value"][1]) for r in wait_until(
        lambda: prom.query(f'hcp_dependency_breaker_state{{dependency="redis",{me}}}'), timeout=30)}
    assert states == {"open": 1.0, "closed": 0.0, "half_open": 0.0}
    count = wait_until(lambda: prom.query(
        f'http_request_duration_seconds_count{{route="/api/v1/x",{me}}}'), timeout=30)
    assert float(count[0]["value"][1]) == 1
    assert prom.query('{__name__=~"ray_(jobs|hcp|http)_.+"}') == []

    # Ray's agent forgets a gauge not set again within two export intervals (10 s each by
    # default); the sink sets its gauges again, so they outlive that.
    time.sleep(max(0.0, recorded_at + 25 - time.monotonic()))
    with urllib.request.urlopen(agent, timeout=5) as r:
        assert "ray_hcp_chain_transactions_pending{" in r.read().decode()
    ray.kill(recorder)
