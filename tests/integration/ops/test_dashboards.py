"""Every panel of the provisioned Grafana dashboards, run against the real Prometheus.

Each panel's PromQL must parse (Prometheus's query API answers ``success``), and every panel
that reads only metrics the stand-in exports must return data. Against a running platform
the same check runs with the platform as the target.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from hcp.observability.catalogue import series_names
from tests.integration.ops.conftest import OpsStack
from tests.promql_names import metric_names
from tests.waiting import wait_until

GRAFANA = Path(__file__).resolve().parents[3] / "ops" / "grafana"
RULES = Path(__file__).resolve().parents[3] / "ops" / "prometheus" / "rules"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# What the stand-in exports besides the catalogue, and what Prometheus makes itself.
STANDIN_RAY = {"ray_node_cpu_utilization", "ray_node_mem_used", "ray_node_mem_total",
               "ray_actors", "ray_object_store_memory"}
SYNTHETIC = {"up", "ALERTS"}
# Grafana's variables, as a dashboard with "All" selected and a 1-minute rate window sends them.
VARIABLES = {"$__rate_interval": "1m", "$facility": ".*", "$model": ".*", "$route": ".*"}


def panel_queries(path: Path) -> list[tuple[str, str]]:
    dashboard = json.loads(path.read_text())
    return [(f"{dashboard['uid']}: {p['title']} [{t['refId']}]", t["expr"])
            for p in dashboard["panels"] for t in p.get("targets", [])]


def expand(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def recorded() -> set[str]:
    return {r["record"] for path in RULES.glob("*.yml")
            for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "record" in r}


def test_the_dashboards_are_well_formed_and_provisioned() -> None:
    assert {p.stem for p in DASHBOARDS} == {"fleet", "economics", "marketplace", "system"}
    datasource = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        uids.add(d["uid"])
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for p in d["panels"]:
            assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
            for t in p.get("targets", []):
                assert t["datasource"]["uid"] == datasource["uid"], (path.name, p["title"])
        used = {v for _, e in panel_queries(path) for v in VARIABLES if v in e}
        declared = {f"${v['name']}" for v in d["templating"]["list"]} | {"$__rate_interval"}
        assert used <= declared, (path.name, used - declared)
    assert len(uids) == len(DASHBOARDS)


def test_every_panel_reads_metrics_that_exist() -> None:
    known = series_names() | recorded() | SYNTHETIC | STANDIN_RAY
    for path in DASHBOARDS:
        for where, expr in panel_queries(path):
            unknown = metric_names(expr) - known
            assert not unknown, (where, unknown)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_parses_and_returns_data(ops_stack: OpsStack, path: Path) -> None:
    wait_until(lambda: ops_stack.query('up{job="ray"} == 1'), timeout=60)
    exported = series_names() | recorded() | SYNTHETIC | STANDIN_RAY
    empty = []
    for where, expr in panel_queries(path):
        query = expand(expr)
        try:
            ops_stack.query(query)  # parses: a bad expression answers 400 bad_data
        except urllib.error.HTTPError as exc:
            pytest.fail(f"{where}: {exc.read().decode()}")
        if metric_names(expr) <= exported:
            try:
                wait_until(lambda q=query: _has_data(ops_stack.query(q)), timeout=30)
            except AssertionError:
                empty.append(where)
    assert not empty, f"panels without data: {empty}"


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(r.get("value", [0, "NaN"])[1] not in ("NaN", "+Inf", "-Inf") for r in result)
