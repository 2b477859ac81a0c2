"""The metrics catalogue follows Prometheus conventions, and every call site in the code
records catalogue names with exactly the catalogue's labels."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hcp.economics.optimizer.types import OutcomeStatus
from hcp.fleet.modes import GpuMode
from hcp.notary.metrics import STAGES
from hcp.observability import catalogue
from hcp.observability.catalogue import BY_NAME, CATALOGUE
from hcp.observability.spec import LABEL_NAME, METRIC_NAME, RESERVED_LABELS, Kind
from hcp.workloads.types import WorkloadState, WorkloadType

ROOT = Path(__file__).resolve().parents[3]
# Unit suffixes Prometheus asks to spell in base units instead.
NON_BASE_UNITS = ("_ms", "_milliseconds", "_hs", "_w", "_kw", "_kilowatts", "_c", "_percent",
                  "_minutes", "_hours", "_kb", "_mb", "_gb")


def test_names_are_unique_and_valid() -> None:
    names = [s.name for s in CATALOGUE]
    assert len(names) == len(set(names))
    for s in CATALOGUE:
        assert METRIC_NAME.match(s.name), s.name
        assert s.help and s.help.strip() == s.help, s.name
        assert s.area, s.name


@pytest.mark.parametrize("s", CATALOGUE, ids=lambda s: s.name)
def test_each_metric_follows_the_conventions(s) -> None:  # type: ignore[no-untyped-def]
    if s.kind is Kind.COUNTER:
        assert s.name.endswith("_total")
    else:
        assert not s.name.endswith("_total")
    assert not s.name.endswith(NON_BASE_UNITS)
    if s.kind is Kind.HISTOGRAM:
        assert s.buckets and all(b > 0 for b in s.buckets)
        assert list(s.buckets) == sorted(set(s.buckets))
        # A histogram named for a unit records that unit.
        assert s.name.endswith(("_seconds", "_bytes"))
    else:
        assert s.buckets == ()
    assert len(set(s.labels)) == len(s.labels)
    for label in s.labels:
        assert LABEL_NAME.match(label) and not label.startswith("__")
        assert label not in RESERVED_LABELS
    assert set(s.values) <= set(s.labels)
    assert all(vals for vals in s.values.values())


def test_the_rental_documents_names_are_in_the_catalogue() -> None:
    assert BY_NAME["http_requests_total"].labels == ("route", "method", "status")
    assert BY_NAME["http_request_duration_seconds"].kind is Kind.HISTOGRAM
    assert 2.0 in BY_NAME["http_request_duration_seconds"].buckets
    assert BY_NAME["jobs_created_total"].kind is Kind.COUNTER


def test_closed_label_sets_cover_the_codes_enums() -> None:
    assert {m.value for m in GpuMode} <= catalogue.MODES
    assert {o.value for o in OutcomeStatus} == catalogue.OUTCOMES
    assert {s.value for s in WorkloadState} == catalogue.WORKLOAD_STATES
    assert {t.value for t in WorkloadType} == catalogue.WORKLOAD_TYPES
    assert set(STAGES) == catalogue.NOTARY_STAGES
    assert catalogue.switch_direction(GpuMode.MINING, "inference") == "MINING_TO_INFERENCE"
    assert catalogue.switch_direction(GpuMode.MINING, GpuMode.IDLE) in catalogue.DIRECTIONS


_RECORDERS = {"inc", "set", "observe", "set_state"}


def _receiver_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _call_sites() -> list[tuple[str, ast.Call]]:
    sites = []
    for folder in ("hcp", "actors", "serve_apps"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in _RECORDERS
                        and "sink" in _receiver_name(node.func.value).lower()
                        and node.args and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)):
                    sites.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return sites


def test_every_call_site_records_a_catalogue_metric_with_its_labels() -> None:
    sites = _call_sites()
    assert any("http_metrics.py" in where for where, _ in sites)  # the scan finds real sites
    for where, call in sites:
        name = call.args[0].value  # type: ignore[attr-defined]
        assert name in BY_NAME, f"{where}: {name!r} is not in the catalogue"
        s = BY_NAME[name]
        if any(k.arg is None for k in call.keywords):
            continue  # **labels: checked at run time by the sink
        given = {k.arg for k in call.keywords}
        if call.func.attr == "set_state":  # type: ignore[attr-defined]
            label = call.args[1].value  # type: ignore[attr-defined]
            given.add(label)
            assert label in s.values, f"{where}: {label} is not a closed-set label of {name}"
        assert given == set(s.labels), f"{where}: {name} takes {s.labels}, given {sorted(given)}"
        expected_kind = {"set": Kind.GAUGE, "set_state": Kind.GAUGE, "observe": Kind.HISTOGRAM}
        kind = expected_kind.get(call.func.attr)  # type: ignore[attr-defined]
        if kind is not None:
            assert s.kind is kind, f"{where}: {name} is a {s.kind.value}"
        else:
            assert s.kind in (Kind.COUNTER, Kind.GAUGE), f"{where}: inc on a histogram"


def test_the_operations_guide_lists_every_metric() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    missing = [s.name for s in CATALOGUE if f"`{s.name}`" not in guide]
    assert not missing, missing
