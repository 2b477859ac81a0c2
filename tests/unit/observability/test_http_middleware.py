"""The HTTP metrics and correlation middlewares on a small FastAPI app, through httpx's ASGI
transport: route templates (never raw paths), statuses, 429s, crashes, mounted sub-apps."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from hcp.errors import RateLimitedError
from hcp.observability.logs import current_correlation_id
from hcp.observability.sink import PrometheusSink
from serve_apps.correlation import CorrelationIdMiddleware
from serve_apps.errors import install_error_handlers
from serve_apps.http_metrics import UNMATCHED, HttpMetricsMiddleware

log = logging.getLogger("tests.http")


class StepClock:
    """Each reading is 0.25 s after the previous one: every request lasts 0.25 s."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.25
        return self.t


def make_app(sink: PrometheusSink) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/workloads/{workload_id}")
    async def get_workload(workload_id: str) -> dict[str, str]:
        log.info("looked up %s", workload_id)
        return {"id": workload_id, "cid": current_correlation_id() or ""}

    @app.post("/api/v1/workloads")
    async def submit() -> JSONResponse:
        return JSONResponse({"ok": True}, status_code=201)

    @app.get("/api/v1/limited")
    async def limited() -> None:
        raise RateLimitedError("slow down", retry_after=3)

    @app.get("/api/v1/crash")
    async def crash() -> None:
        raise RuntimeError("bug")

    sub = FastAPI()
    router = APIRouter()

    @router.get("/claims/{claim_id}")
    async def claim(claim_id: str) -> dict[str, str]:
        return {"claim": claim_id}

    sub.include_router(router)
    app.mount("/notary", sub)
    app.add_middleware(HttpMetricsMiddleware, sink=sink, clock=StepClock())
    app.add_middleware(CorrelationIdMiddleware)
    return app


async def _drive(app: FastAPI) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [
            await client.get("/api/v1/workloads/wl-1"),
            await client.get("/api/v1/workloads/wl-2", headers={"X-Request-ID": "req-42"}),
            await client.post("/api/v1/workloads"),
            await client.get("/api/v1/limited"),
            await client.get("/api/v1/crash"),
            await client.get("/no/such/path/123"),
            await client.get("/notary/claims/c-9"),
            await client.request("PROPFIND", "/api/v1/workloads/wl-3"),
        ]


def test_requests_are_recorded_by_route_template() -> None:
    sink = PrometheusSink()
    responses = asyncio.run(_drive(make_app(sink)))
    assert [r.status_code for r in responses] == [200, 200, 201, 429, 500, 404, 200, 405]

    def requests(route: str, method: str, status: str) -> float | None:
        return sink.value("http_requests_total", route=route, method=method, status=status)

    assert requests("/api/v1/workloads/{workload_id}", "GET", "200") == 2
    assert requests("/api/v1/workloads", "POST", "201") == 1
    assert requests("/api/v1/limited", "GET", "429") == 1
    assert requests("/api/v1/crash", "GET", "500") == 1
    assert requests(UNMATCHED, "GET", "404") == 1
    assert requests("/notary/claims/{claim_id}", "GET", "200") == 1
    # An unknown method is OTHER, and a 405 is matched to the path's template.
    assert requests("/api/v1/workloads/{workload_id}", "OTHER", "405") == 1
    text = sink.exposition().decode()
    assert "wl-1" not in text and "c-9" not in text and "/no/such" not in text

    hist = {"route": "/api/v1/workloads/{workload_id}", "method": "GET"}
    assert sink.value("http_request_duration_seconds_count", **hist) == 2
    assert sink.value("http_request_duration_seconds_sum", **hist) == 0.5
    assert sink.value("hcp_rate_limit_refusals_total", route="/api/v1/limited") == 1
    assert sink.value("hcp_rate_limit_refusals_total", route="/api/v1/crash") is None
    assert responses[3].headers["Retry-After"] == "3"


def test_the_correlation_id_is_kept_echoed_and_logged(caplog) -> None:  # type: ignore[no-untyped-def]
    from hcp.observability.logs import CorrelationFilter

    caplog.handler.addFilter(CorrelationFilter())
    with caplog.at_level(logging.INFO, logger="tests.http"):
        responses = asyncio.run(_drive(make_app(PrometheusSink())))
    first, second = responses[0], responses[1]
    assert second.headers["X-Request-ID"] == "req-42"
    assert second.json()["cid"] == "req-42"
    generated = first.headers["X-Request-ID"]
    assert generated and generated != "req-42" and first.json()["cid"] == generated
    ids = [getattr(r, "correlation_id", None) for r in caplog.records if r.name == "tests.http"]
    assert ids == [generated, "req-42"]
    assert current_correlation_id() is None  # nothing leaks out of the request


def test_a_hostile_request_id_is_replaced() -> None:
    app = make_app(PrometheusSink())

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/api/v1/workloads/x", headers={"X-Request-ID": "a b\tc"})

    response = asyncio.run(go())
    assert response.headers["X-Request-ID"] != "a b\tc"
    assert len(response.headers["X-Request-ID"]) == 32
