"""The OpenAPI document only grows: nothing a client relies on is removed, renamed, retyped or
newly required. The baseline is the document as released at commit ac89645; after an intended
addition, write a new one (see ``openapi_contract``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.unit.api.openapi_contract import BASELINE, breaking_changes, current_document


def test_the_document_only_adds_to_the_baseline(tmp_path: Path) -> None:
    old = json.loads(BASELINE.read_text())
    new = current_document(tmp_path)
    assert len(old["paths"]) >= 60  # the whole ingress: platform routes and every mounted area
    assert breaking_changes(old, new) == []
    # GPU resources gained the holder of a rented or busy GPU: an addition, allowed.
    assert "held_by" in new["components"]["schemas"]["GpuResource"]["properties"]


def test_the_rule_catches_each_kind_of_break(tmp_path: Path) -> None:
    old = json.loads(BASELINE.read_text())
    assert breaking_changes(old, copy.deepcopy(old)) == []
    path = "/api/v1/workloads"
    broken = copy.deepcopy(old)
    del broken["paths"][path]["post"]
    broken["components"]["schemas"]["GpuResource"]["properties"].pop("mode")
    broken["components"]["schemas"]["GpuResource"]["properties"]["generation"] = {"type": "string"}
    broken["components"]["schemas"]["WorkloadSpec"].setdefault("required", []).append("name")
    get = broken["paths"][path]["get"]
    get["parameters"] = [dict(p, required=True) if p["name"] == "limit" else p
                         for p in get["parameters"]]
    problems = breaking_changes(old, broken)
    assert f"operation removed: POST {path}" in problems
    assert "property removed: GpuResource.mode" in problems
    assert "property type changed: GpuResource.generation" in problems
    assert f"parameter now required: GET {path} limit" in problems
    # A request body that requires a new field breaks its senders (WorkloadSpec is one; the
    # POST was removed above, so check it on an intact copy).
    body = copy.deepcopy(old)
    body["components"]["schemas"]["WorkloadSpec"].setdefault("required", []).append("name")
    assert "request WorkloadSpec now requires ['name']" in breaking_changes(old, body)
