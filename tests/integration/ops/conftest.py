"""A real Prometheus and Alertmanager, started by hcp's own stack code, scraping the stand-in
target through a file-sd list (as it scrapes Ray's metrics agents on the platform)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hcp.config import Settings
from hcp.observability import stack
from hcp.observability.discovery import static_targets, write_targets
from hcp.observability.settings import OpsSettings

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "ops" / "prometheus" / "rules"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@dataclass
class OpsStack:
    prometheus: str
    alertmanager: str
    standin: str
    settings: Settings

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = get_json(f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def override(self, name: str, value: float, **labels: str) -> None:
        data = json.dumps({"name": name, "value": value, "labels": labels}).encode()
        req = urllib.request.Request(self.standin, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).close()


def fast_rules(tmp: Path) -> list[Path]:
    """The committed rule files with every group evaluated each second (expressions as is)."""
    out = []
    for path in sorted(RULES.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            group["interval"] = "1s"
        target = tmp / path.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(target)
    return out


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    home = tmp_path_factory.mktemp("ops-home")
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.ops.standin"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening "), line
        standin_port = int(line.split()[1])
        ops = OpsSettings(prometheus_port=free_port(), alertmanager_port=free_port(),
                          scrape_interval="1s", evaluation_interval="1s")
        settings = Settings(home=home, ray_temp_dir=home / "ray", ops=ops)
        write_targets(stack.targets_dir(settings) / "standin.json",
                      static_targets([f"127.0.0.1:{standin_port}"]))
        am = stack.alertmanager(settings)
        prom = stack.prometheus(settings, rule_files=fast_rules(home))
        am.start()
        try:
            prom.start()
            try:
                yield OpsStack(prometheus=f"http://127.0.0.1:{ops.prometheus_port}",
                               alertmanager=f"http://127.0.0.1:{ops.alertmanager_port}",
                               standin=f"http://127.0.0.1:{standin_port}/override",
                               settings=settings)
            finally:
                prom.stop()
        finally:
            am.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
