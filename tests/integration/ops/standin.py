"""A stand-in scrape target: every catalogue metric, exported the way Ray's metrics agent does.

Until the platform records through ``RaySink`` everywhere, the Prometheus tests scrape this
process instead: it records plausible values for every metric of the catalogue through
``PrometheusSink`` twice a second and serves them as Ray would (``ray_`` prefix, Ray's own
labels, the OpenTelemetry scope label), plus a few of Ray's system metrics. ``POST /override``
with ``{"name", "value", "labels"}`` pins a gauge (a test turns an alert on and off with it).

    python -m tests.integration.ops.standin   # prints "listening PORT"
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client

from hcp.observability.catalogue import CATALOGUE
from hcp.observability.sink import PrometheusSink
from hcp.observability.spec import Kind, MetricSpec

OPEN_VALUES = {
    "device": ("lab-gpu-0", "lab-gpu-1"), "facility": ("local-lab",), "model": ("H100",),
    "route": ("/api/v1/workloads", "/api/v1/workloads/{workload_id}"),
    "status": ("200", "201", "503"), "reason": ("invalid_signature",), "provider": ("prov-a",),
    "node": ("node-1",), "validator": ("val-1", "val-2"),
}
ONE_HOT = {"hcp_device_mode": "mode", "hcp_dependency_breaker_state": "state"}
GAUGE_VALUES = {
    "hcp_device_info": 1.0, "hcp_device_hashrate_hashes_per_second": 1.2e6,
    "hcp_device_temperature_limit_celsius": 83.0, "hcp_device_utilization_ratio": 0.6,
    "hcp_facility_power_cap_watts": 10_000.0, "hcp_facility_power_watts": 6_500.0,
    "hcp_gpu_hour_revenue_usd": 2.4, "hcp_gpu_hour_profit_usd": 1.9,
    "hcp_optimizer_period_profit_usd": 12.5, "hcp_optimizer_interval_seconds": 5.0,
    "hcp_escrow_locked_amount": 1_000_000.0, "hcp_escrow_conservation_residual": 0.0,
    "hcp_provider_reputation_score": 900.0, "hcp_chain_node_up": 1.0,
    "hcp_chain_transactions_pending": 0.0, "hcp_chain_indexer_lag_blocks": 0.0,
    "hcp_image_store_size_bytes": 2.5e9, "hcp_image_store_pins": 12.0,
    "hcp_image_store_peers": 25.0, "hcp_agent_containers": 2.0, "hcp_db_connections": 12.0,
    "hcp_workloads": 3.0,
}
RAY_LABELS = ('Component="core_worker",NodeAddress="127.0.0.1",SessionName="session_standin",'
              'Version="2.60.0",WorkerId="01000000ffff"')
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(.*)$")


def label_sets(s: MetricSpec, limit: int = 64) -> list[dict[str, str]]:
    choices = []
    for label in s.labels:
        if label in s.values:
            choices.append(sorted(s.values[label]))
        else:
            choices.append(list(OPEN_VALUES.get(label, ("x",))))
    combos = itertools.islice(itertools.product(*choices), limit)
    return [dict(zip(s.labels, c, strict=True)) for c in combos]


class StandIn:
    def __init__(self) -> None:
        self.sink = PrometheusSink()
        self.lock = threading.Lock()
        self.overrides: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.tick_count = 0
        self.rng = random.Random(15)

    def tick(self) -> None:
        with self.lock:
            self.tick_count += 1
            for s in CATALOGUE:
                for labels in label_sets(s):
                    self._record(s, labels)

    def _record(self, s: MetricSpec, labels: dict[str, str]) -> None:
        if s.name in ONE_HOT:
            label = ONE_HOT[s.name]
            if labels[label] != min(s.values[label]):
                return  # one call per label set below covers every value
            rest = {k: v for k, v in labels.items() if k != label}
            current = {"hcp_device_mode": "MINING", "hcp_dependency_breaker_state": "closed"}
            self.sink.set_state(s.name, label, current[s.name], **rest)
            return
        if s.kind is Kind.COUNTER:
            if labels.get("status", "").startswith("5") and self.tick_count % 20:
                return  # an occasional 5xx among many 2xx
            self.sink.inc(s.name, self.rng.randint(1, 3), **labels)
        elif s.kind is Kind.HISTOGRAM:
            lo, hi = math.log(s.buckets[0]), math.log(s.buckets[-1])
            self.sink.observe(s.name, math.exp(self.rng.uniform(lo, hi)), **labels)
        else:
            key = (s.name, tuple(sorted(labels.items())))
            if key in self.overrides:
                value = self.overrides[key]
            elif s.name == "hcp_optimizer_last_step_timestamp_seconds":
                value = time.time()
            elif s.name == "hcp_chain_block_height":
                value = float(self.tick_count)
            elif s.name in ("hcp_device_power_watts", "hcp_device_temperature_celsius"):
                base = 300.0 if s.name == "hcp_device_power_watts" else 62.0
                value = base + self.rng.uniform(-5, 5)
            else:
                value = GAUGE_VALUES.get(s.name, 1.0)
            self.sink.set(s.name, value, **labels)

    def override(self, name: str, value: float, labels: dict[str, str]) -> None:
        with self.lock:
            self.overrides[(name, tuple(sorted(labels.items())))] = value
            self.sink.set(name, value, **labels)

    def exposition(self) -> str:
        with self.lock:
            text = self.sink.exposition().decode()
        out = [_ray_style(line) for line in text.splitlines()]
        out += [
            "# TYPE ray_node_cpu_utilization gauge",
            f'ray_node_cpu_utilization{{{RAY_LABELS},ip="127.0.0.1"}} 37.5',
            "# TYPE ray_node_mem_used gauge",
            f'ray_node_mem_used{{{RAY_LABELS},ip="127.0.0.1"}} 4.2e9',
            "# TYPE ray_node_mem_total gauge",
            f'ray_node_mem_total{{{RAY_LABELS},ip="127.0.0.1"}} 2.4e10',
            "# TYPE ray_actors gauge",
            f'ray_actors{{{RAY_LABELS},State="ALIVE",Name="GpuActor",Source="executor"}} 2',
            "# TYPE ray_object_store_memory gauge",
            f'ray_object_store_memory{{{RAY_LABELS},Location="MMAP_SHM",ObjectState="SEALED"}} 1e6',
        ]
        return "\n".join(out) + "\n"


def _ray_style(line: str) -> str:
    """One exposition line as Ray's agent writes it: ray_ prefix, Ray's labels, otel scope."""
    if line.startswith("# "):
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
            parts[2] = f"ray_{parts[2]}"
        return " ".join(parts)
    m = _SAMPLE.match(line)
    if not m:
        return line
    name, _, labels, value = m.groups()
    own = f"{labels}," if labels else ""
    return f'ray_{name}{{{RAY_LABELS},{own}otel_scope_name="ray"}} {value}'


def serve(port: int = 0) -> None:
    prometheus_client.disable_created_metrics()
    standin = StandIn()
    standin.tick()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = standin.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            req: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            standin.override(req["name"], float(req["value"]), req.get("labels", {}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def loop() -> None:
        while True:
            time.sleep(0.5)
            standin.tick()

    threading.Thread(target=loop, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
