"""The platform app is observed at its edge: every request gets a correlation id (the
client's, when sane, else a new one) and, with a metrics sink, is counted by route template."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.observability.sink import PrometheusSink
from serve_apps.factory import build_app
from tests.unit.api.support import make_harness


def test_requests_are_counted_by_route_template_and_carry_a_correlation_id(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    sink = PrometheusSink()
    app = build_app(h.services, h.tokens, h.settings, metrics=sink)
    with TestClient(app) as client:
        alice = h.headers(Role.CUSTOMER, "alice")
        for wid in ("w-1", "w-2", "w-3"):  # three ids, one series
            r = client.get(f"/api/v1/workloads/{wid}", headers=alice)
            assert r.status_code == 404
            assert len(r.headers["x-request-id"]) >= 16  # none sent: one was made
        assert client.get("/api/v1/workloads", headers={**alice, "X-Request-ID": "trace-42"}
                          ).headers["x-request-id"] == "trace-42"
        assert client.get("/api/v1/workloads").status_code == 401
    value = sink.registry.get_sample_value
    assert value("http_requests_total", {"route": "/api/v1/workloads/{workload_id}",
                                         "method": "GET", "status": "404"}) == 3
    assert value("http_requests_total", {"route": "/api/v1/workloads", "method": "GET",
                                         "status": "200"}) == 1
    assert value("http_requests_total", {"route": "/api/v1/workloads", "method": "GET",
                                         "status": "401"}) == 1
