"""Every JSON body of the platform (API, notary, marketplace), fuzzed against a real server
process on SQLite and on PostgreSQL: deep nesting, huge numbers, NUL bytes, lone surrogates,
extreme dates and lenient types find no 5xx and never kill the process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hcp.auth.tokens import Role, TokenService
from tests.unit.api.support import SECRET

HOSTILE_VALUES: list[Any] = [
    "a\x00b", "\ud800", "x" * 100_000, 10**30, -(10**30), 2**63, 1e308, -1e-320, True, "٣",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00",
    [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]], {"$ref": "#"}, None, "", "NaN",
]
HOSTILE_BODIES: list[bytes] = [
    b"[" * 100_000, b"{" * 50_000, b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999}',
    b"9" * 6000, b'"\\u0000"', b'{"\\ud800": 1}', b"\xff\xfe", b"", b"null", b"[]",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.hardening.app_server", str(tmp_path),
         database_url, str(port)],
        cwd=Path(__file__).resolve().parents[3], env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
        try:
            if httpx.get(f"{base}/openapi.json", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.3)
    try:
        yield proc, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _plain(schema: dict[str, Any], doc: dict[str, Any]) -> Any:
    schema = _resolve(schema, doc)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _plain(schema[key][0], doc)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: _plain(v, doc) for k, v in schema.get("properties", {}).items()}
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "array": []}.get(kind, "x")


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" not in content:
                continue
            filled = "/".join("x1" if p.startswith("{") else p for p in path.split("/"))
            yield method.upper(), filled, _resolve(content["application/json"]["schema"], doc)


def test_no_json_body_yields_a_5xx_or_kills_the_process(server) -> None:  # type: ignore[no-untyped-def]
    proc, base = server
    tokens = TokenService(SECRET)
    headers = [{"Authorization": f"Bearer {tokens.issue(s, r)}"} for s, r in
               (("ops", Role.ADMIN), ("alice", Role.CUSTOMER), ("prov", Role.PROVIDER))]
    headers.append({})
    with httpx.Client(base_url=base, timeout=60) as http:
        doc = http.get("/openapi.json").json()
        ops = list(_operations(doc))
        assert len(ops) >= 15, [o[:2] for o in ops]
        sent = 0
        for method, path, schema in ops:
            plain = _plain(schema, doc)
            bodies: list[bytes] = list(HOSTILE_BODIES)
            for field in (plain if isinstance(plain, dict) else {}):
                for value in HOSTILE_VALUES:
                    bodies.append(json.dumps({**plain, field: value}).encode())
            for i, body in enumerate(bodies):
                r = http.request(method, path, content=body, headers={
                    **headers[i % len(headers)], "content-type": "application/json"})
                sent += 1
                assert r.status_code < 500, (method, path, body[:120], r.status_code, r.text[:300])
                if r.status_code >= 400 and r.content:
                    text = r.text
                    assert "Traceback" not in text and "SELECT" not in text and "5432" not in text
            assert proc.poll() is None, f"the server died on {method} {path}"
        assert sent > 1000
        assert http.get("/docs").status_code == 200  # still serving
