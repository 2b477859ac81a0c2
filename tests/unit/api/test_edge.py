"""The edge guard in front of every app: bounded JSON, clean request lines, pinned recursion,
typed refusals that name no server detail, and the API docs served without a CDN."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.config import Settings
from hcp.errors import StoreError
from hcp.jsonsafe import JsonLimits, loads, nesting_depth
from serve_apps.edge import RECURSION_LIMIT, server_config
from tests.unit.api.support import Harness, make_harness

DEEP = b"[" * 100_000


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return make_harness(tmp_path, real_router=True, mount_areas=True)


@pytest.fixture
def client(harness: Harness) -> TestClient:
    return TestClient(harness.app)


def _json_routes(harness: Harness) -> list[tuple[str, str]]:
    """(method, path) of every operation that takes a JSON body, path parameters filled."""
    out = []
    for path, ops in harness.app.openapi()["paths"].items():
        for method, op in ops.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                filled = path
                for part in path.split("/"):
                    if part.startswith("{"):
                        filled = filled.replace(part, "x1")
                out.append((method.upper(), filled))
    return out


def test_deep_nesting_is_refused_anonymously_before_parsing(client: TestClient) -> None:
    # The 100,000-`[` body that overflowed the C stack and killed the API process.
    r = client.post("/api/v1/workloads", content=DEEP, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_body"
    assert client.get("/docs").status_code == 200  # and the app still answers


def test_every_json_route_bounds_depth_size_and_values(harness: Harness, client: TestClient) -> None:
    routes = _json_routes(harness)
    assert len(routes) >= 15  # platform, notary and marketplace routes are all mounted
    hostile = {
        DEEP: 400,
        b'{"a": NaN}': 400,
        b'{"a": 1e999}': 400,
        b'{"a": ' + b"9" * 5000 + b"}": 400,
        b'{"a": "\\u0000"}': 400,
        b'{"a": "\\ud800"}': 400,
        b'{"a": "x"' + b" " * (2 << 20) + b"}": 413,
    }
    for method, path in routes:
        for body, status in hostile.items():
            r = client.request(method, path, content=body, headers={"content-type": "application/json"})
            assert r.status_code == status, (method, path, body[:20], r.status_code, r.text[:200])


def test_a_chunked_body_is_capped_while_streaming(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 65536

    r = client.post("/api/v1/workloads", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


@pytest.mark.parametrize("path", ["/api/v1/workloads/a%00b", "/api/v1/claims/a%00b",
                                  "/api/v1/workloads?owner=a%00b", "/api/v1/workloads?cursor=%ff",
                                  "/api/v1/marketplace/offers?gpu_model=%00"])
def test_nul_or_bad_utf8_in_the_request_line_is_a_400(harness: Harness, client: TestClient,
                                                       path: str) -> None:
    r = client.get(path, headers=harness.headers(Role.ADMIN, "ops"))
    assert r.status_code == 400 and r.json()["error"] == "bad_request", r.text


def test_the_recursion_limit_a_dependency_raised_is_pinned(harness: Harness,
                                                           client: TestClient) -> None:
    import py_ecc  # noqa: F401 -- the import that raised it to 100,000

    sys.setrecursionlimit(100_000)  # as py_ecc does at import
    client.get("/api/v1/workloads", headers=harness.headers(Role.ADMIN, "ops"))
    assert sys.getrecursionlimit() == RECURSION_LIMIT


def test_nesting_scan_ignores_brackets_in_strings() -> None:
    assert nesting_depth(b'["[[[", {"k": "]]]{{{\\"["}]') == 2
    assert loads(b'{"a": ["\\ud83d\\ude00"]}') == {"a": ["\N{GRINNING FACE}"]}  # a pair is fine
    with pytest.raises(Exception, match="deeper than 3"):
        loads(b"[[[[1]]]]", JsonLimits(max_depth=3))


def test_server_faults_name_no_host_path_or_sql() -> None:
    exc = StoreError('connection to server at "db.internal" (10.0.0.7), port 5432 failed: '
                     "SELECT * FROM ledger_accounts /var/lib/hcp/hcp.db")
    body = exc.to_dict()
    assert body == {"error": "store_unavailable", "detail": "the store is unavailable; retry later"}


def test_docs_are_served_from_the_package(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr.net" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200


@pytest.mark.parametrize("trusted,expected", [([], "127.0.0.1"), (["127.0.0.1"], "203.0.113.9")])
def test_a_standalone_server_believes_forwarded_for_only_from_trusted_proxies(
        tmp_path: Path, trusted: list[str], expected: str) -> None:
    app = FastAPI()

    @app.get("/who")
    def who(request: Request) -> dict[str, str]:
        return {"client": request.client.host if request.client else ""}

    settings = Settings(home=tmp_path, api_trusted_proxies=trusted)
    config = server_config(app, settings, "127.0.0.1", 0)
    config.load()  # what uvicorn serves: the app behind its proxy-header middleware (or not)

    async def ask() -> str:
        transport = httpx.ASGITransport(app=config.loaded_app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.get("/who", headers={"X-Forwarded-For": "203.0.113.9"})
            assert r.status_code == 200, r.text
            return str(r.json()["client"])

    assert asyncio.run(ask()) == expected
