"""The Prometheus files agree with the catalogue: every alert is tested firing and quiet,
routes on its severity, and reads only metrics that exist; Ray's prefix is taken off."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from hcp.observability.catalogue import series_names
from tests.promql_names import metric_names

OPS = Path(__file__).resolve().parents[3] / "ops"
PROM = OPS / "prometheus"


def _groups(name: str) -> list[dict]:  # type: ignore[type-arg]
    return yaml.safe_load((PROM / "rules" / name).read_text())["groups"]


def _alerts() -> list[dict]:  # type: ignore[type-arg]
    return [r for g in _groups("alerts.yml") for r in g["rules"]]


def _recorded() -> set[str]:
    return {r["record"] for g in _groups("recording.yml") for r in g["rules"]}


def test_every_alert_has_a_severity_an_area_and_a_summary() -> None:
    alerts = _alerts()
    assert len({a["alert"] for a in alerts}) == len(alerts)
    for a in alerts:
        assert a["labels"]["severity"] in ("critical", "warning"), a["alert"]
        assert a["labels"]["area"], a["alert"]
        assert a["annotations"]["summary"], a["alert"]


def test_the_rental_documents_rules_and_hcps_own_are_all_there() -> None:
    names = {a["alert"] for a in _alerts()}
    assert {"BlockchainNodeDown", "BlockProductionStalled", "HighErrorRate", "HighLatency",
            "IPFSLowPeerCount", "DatabaseHighLoad", "NoJobsCreated"} <= names
    assert {"SwitchLatencyP99High", "GpuOverTemperature", "OptimizerStalled",
            "EscrowConservationViolated", "NotaryRejectionSpike", "FacilityOverPowerCap",
            "ValidatorQuorumNotReached"} <= names


def test_every_alert_is_shown_firing_and_quiet_by_a_promtool_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    files = sorted((PROM / "tests").glob("*.test.yml"))
    assert files
    for path in files:
        doc = yaml.safe_load(path.read_text())
        for rule_file in doc["rule_files"]:
            assert (path.parent / rule_file).is_file(), (path.name, rule_file)
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - firing == set(), "never shown firing"
    assert names - quiet == set(), "never shown quiet"


def test_rules_read_only_metrics_that_exist() -> None:
    known = series_names() | _recorded() | {"up"}
    for path in sorted((PROM / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                unknown = {n for n in metric_names(rule["expr"]) if n not in known}
                assert not unknown, (rule.get("alert") or rule.get("record"), unknown)


def test_the_history_group_makes_one_point_a_minute() -> None:
    history = next(g for g in _groups("recording.yml") if g["name"] == "hcp_history_1m")
    assert history["interval"] == "1m"
    assert all(r["record"].endswith(("_1m", ":sum")) for r in history["rules"])


def test_the_scrape_config_takes_rays_prefix_off_catalogue_names_only() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    ray = next(j for j in config["scrape_configs"] if j["job_name"] == "ray")
    rename = next(r for r in ray["metric_relabel_configs"] if r.get("target_label") == "__name__")
    pattern = re.compile(rename["regex"])
    for name in series_names():
        m = pattern.fullmatch(f"ray_{name}")
        assert m, name
        assert m.expand(rename["replacement"].replace("$1", r"\1")) == name
    for rays_own in ("ray_node_cpu_utilization", "ray_tasks", "ray_actors",
                     "ray_serve_num_http_requests_total", "ray_object_store_memory"):
        assert not pattern.fullmatch(rays_own), rays_own
    assert any(f.endswith("prom_metrics_service_discovery.json")
               for f in ray["file_sd_configs"][0]["files"])
    for rule_file in config["rule_files"]:
        assert (PROM / rule_file).is_file()
