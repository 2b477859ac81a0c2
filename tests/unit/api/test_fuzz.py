"""Property-based fuzzing of the whole OpenAPI document (schemathesis): no input yields a 5xx,
and every refusal is the typed ``{"error", "detail"}`` body (OpenAI's shape under ``/v1/``)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from hcp.auth.tokens import Role
from tests.unit.api.support import make_harness

# Built at import: schemathesis reads the schema while pytest collects the tests.
_HARNESS = make_harness(Path(tempfile.mkdtemp(prefix="hcp-fuzz-")), api_rate_limit=1_000_000)
schema = schemathesis.openapi.from_asgi("/openapi.json", _HARNESS.app)
_ROLES = (Role.ADMIN, Role.CUSTOMER)
_calls = itertools.count()


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:  # type: ignore[no-untyped-def]
    # Admins reach every handler; customers exercise the ownership branches. Alternate.
    role = _ROLES[next(_calls) % 2]
    response = case.call(headers=_HARNESS.headers(role, f"fuzz-{role.value}"))
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        if case.path.startswith("/v1/"):
            err = body["error"]
            assert set(err) == {"message", "type", "param", "code"} and err["message"], body
        else:
            assert isinstance(body.get("error"), str) and "detail" in body, body
