"""Scrape cost of the platform's metrics: one scrape of a 2-GPU and of a simulated 1,000-GPU fleet.

Two paths, each with the 2-GPU fleet as the baseline of the same run:
- ``exposition``: prometheus_client rendering every per-device series (PrometheusSink);
- ``ray_agent``: one actor records the fleet through RaySink, Ray's metrics agent serves it,
  and the real Prometheus scrapes it (its own ``scrape_duration_seconds``), plus the time of
  a plain HTTP GET of the agent's /metrics.

    python -m bench.ops_scrape
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import emit, note
from hcp.observability.sink import CheckedSink, PrometheusSink

FLEETS = (2, 1000)
FACILITIES = 4


def record_fleet(sink: CheckedSink, devices: int) -> None:
    """What every GPU actor records each checkpoint, for ``devices`` simulated GPUs."""
    for i in range(devices):
        dev = {"device": f"sim-gpu-{i}", "facility": f"site-{i % FACILITIES}", "kind": "gpu"}
        sink.set_state("hcp_device_mode", "mode", "MINING" if i % 3 else "INFERENCE", **dev)
        sink.set("hcp_device_info", 1, **dev, model="H100", telemetry="simulated")
        sink.set("hcp_device_hashrate_hashes_per_second", 1.2e6 + i, **dev)
        sink.inc("hcp_device_shares_total", 1, **dev)
        sink.set("hcp_device_power_watts", 300 + i % 50, **dev)
        sink.set("hcp_device_temperature_celsius", 60 + i % 20, **dev)
        sink.set("hcp_device_temperature_limit_celsius", 83, **dev)
        sink.set("hcp_device_utilization_ratio", 0.5, **dev)
    for f in range(FACILITIES):
        sink.set("hcp_facility_power_watts", 1e5, facility=f"site-{f}")
        sink.set("hcp_facility_power_cap_watts", 2e5, facility=f"site-{f}")


def bench_exposition() -> None:
    results: dict[int, tuple[float, int]] = {}
    for devices in FLEETS:
        sink = PrometheusSink()
        record_fleet(sink, devices)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            text = sink.exposition()
            times.append(time.perf_counter() - t0)
        samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        results[devices] = (statistics.median(times), samples)
    base = results[FLEETS[0]][0]
    for devices, (seconds, samples) in results.items():
        emit("ops_scrape", f"exposition_{devices}gpu", seconds * 1e3, "ms", base * 1e3,
             samples=samples)


def bench_ray_agent() -> None:
    import ray

    from hcp.config import Settings
    from hcp.observability import stack
    from hcp.observability.discovery import ray_targets, write_targets
    from hcp.observability.settings import OpsSettings

    temp = tempfile.mkdtemp(prefix="hcp-bench-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    try:
        @ray.remote(num_cpus=0)
        class Fleet:
            def __init__(self) -> None:
                from actors.metrics_sink import RaySink

                self.sink = RaySink()

            def record(self, devices: int) -> None:
                from bench.ops_scrape import record_fleet

                record_fleet(self.sink, devices)

        node = next(n for n in ray.nodes() if n["Alive"])
        agent = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        home = Path(temp) / "home"
        port = _free_port()
        # Ray's default export interval (10 s); Prometheus scrapes every 5 s (5 s timeout).
        settings = Settings(home=home, ops=OpsSettings(prometheus_port=port, scrape_interval="5s"))
        write_targets(stack.targets_dir(settings) / "ray.json", ray_targets(ray.nodes()))
        prom = stack.prometheus(settings, with_alertmanager=False)
        prom.start()
        try:
            fleet = Fleet.remote()  # type: ignore[attr-defined]
            results: dict[int, tuple[float, float, float]] = {}
            for devices in FLEETS:
                ray.get(fleet.record.remote(devices))
                expected = 'ray_hcp_device_shares_total{'
                last = f'device="sim-gpu-{devices - 1}"'
                _wait(lambda e=expected, d=last: any(
                    e in line and d in line for line in _get(agent).splitlines()), 120, agent)
                time.sleep(20)  # let every series of this fleet size reach the agent
                gets = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    _get(agent)
                    gets.append(time.perf_counter() - t0)
                time.sleep(20)  # four scrapes by Prometheus at this size
                dur = _query(port, 'avg_over_time(scrape_duration_seconds{job="ray"}[18s])')
                samples = _query(port, 'min_over_time(scrape_samples_scraped{job="ray"}[18s])')
                results[devices] = (statistics.median(gets), dur, samples)
        finally:
            prom.stop()
        base_get, base_scrape, _ = results[FLEETS[0]]
        for devices, (get_s, scrape_s, samples) in results.items():
            emit("ops_scrape", f"ray_agent_prometheus_scrape_{devices}gpu", scrape_s * 1e3, "ms",
                 base_scrape * 1e3, samples=int(samples))
            emit("ops_scrape", f"ray_agent_http_get_{devices}gpu", get_s * 1e3, "ms",
                 base_get * 1e3)
    finally:
        ray.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return str(r.read().decode())


def _query(port: int, expr: str) -> float:
    import json
    import urllib.parse

    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    result: list[dict[str, Any]] = json.loads(_get(url))["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def _wait(pred: Any, timeout: float, agent: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(1)
    text = _get(agent) if agent else ""
    note(f"{sum('hcp_device' in line for line in text.splitlines())} hcp_device lines at {agent}")
    raise TimeoutError("the agent did not export the fleet in time")


if __name__ == "__main__":
    note("exposition of the per-device series (prometheus_client)")
    bench_exposition()
    note("through Ray's metrics agent, scraped by the real Prometheus")
    bench_ray_agent()
