"""What an outside attack run found in the notary: replays that spent a miner's quota, claims
that showed anyone the signature and the server's artifact path, unlimited anonymous reads,
and admin inputs the store could not hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hcp.auth.tokens import Role, TokenService
from tests.unit.notary import wat_modules as wat
from tests.unit.notary.support import make_artifact
from tests.unit.notary.test_http import Notary

GOOD = make_artifact(wat.score_wasm("0.9731"), {"lr": 0.1})


def _form(data: dict, artifact: bytes) -> tuple[dict, dict]:
    return data, {"artifact": ("artifact.tar.gz", artifact, "application/gzip")}


def test_replays_of_a_public_claim_never_cost_the_miner_its_quota(tmp_path: Path) -> None:
    notary = Notary(tmp_path, notary_miner_limit=10)
    data, files = notary.miner.form(GOOD, 0.9731)
    ok = notary.post(data, files)
    assert ok.status_code == 202, ok.text
    # Everything an anonymous reader could learn, replayed nine times with junk bytes.
    for _ in range(9):
        r = notary.post(*_form(data, b"junk artifact bytes"))
        assert r.status_code == 403 and r.json()["error"] == "replay_detected"
    # The miner's next honest claims are still within its quota (1 used of 10).
    for _ in range(9):
        fresh = notary.post(*notary.miner.form(GOOD, 0.9731))
        assert fresh.status_code == 202, fresh.text
    over = notary.post(*notary.miner.form(GOOD, 0.9731))
    assert over.status_code == 429  # the 11th fresh claim is the first one refused


def test_a_refused_over_quota_claim_keeps_its_nonce_for_later(tmp_path: Path) -> None:
    notary = Notary(tmp_path, notary_miner_limit=1)
    assert notary.post(*notary.miner.form(GOOD, 0.9731)).status_code == 202
    data, files = notary.miner.form(GOOD, 0.9731)
    assert notary.post(data, files).status_code == 429
    # Not processed, so not spent: after the window the same signed claim is accepted.
    assert notary.svc.pipeline.nonces.claim(json.loads(data["payload"])["nonce"],
                                            datetime.now(UTC), 60)


def test_anonymous_claim_reads_show_the_verdict_only(tmp_path: Path) -> None:
    notary = Notary(tmp_path)
    sub = notary.post(*notary.miner.form(GOOD, 0.9731)).json()["submission_id"]
    anon = notary.get(f"/api/v1/claims/{sub}").json()
    assert anon["status"] == "verified" and anon["miner_id"] == notary.miner.miner_id
    assert not {"signature", "nonce", "artifact_uri", "payload_timestamp"} & set(anon)
    tokens = TokenService.from_settings(notary.settings)
    for role, subject in ((Role.ADMIN, "ops"), (Role.MINER, notary.miner.miner_id)):
        hdr = {"Authorization": f"Bearer {tokens.issue(subject, role)}"}
        full = notary.get(f"/api/v1/claims/{sub}", headers=hdr).json()
        assert full["signature"] and full["artifact_uri"].startswith("file://")
    other = {"Authorization": f"Bearer {tokens.issue('another-miner', Role.MINER)}"}
    assert "signature" not in notary.get(f"/api/v1/claims/{sub}", headers=other).json()


def test_anonymous_reads_are_rate_limited(tmp_path: Path) -> None:
    notary = Notary(tmp_path, api_anonymous_rate_limit=5)
    codes = [notary.get("/api/v1/task").status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/v1/admin/miners", {"miner_id": "m-1", "public_key": "ab" * 32, "stake": 10**30}, 422),
    ("/api/v1/admin/miners", {"miner_id": "m-1", "public_key": "ab" * 32, "stake": True}, 422),
    ("/api/v1/admin/miners", {"miner_id": "m-1", "public_key": "ab" * 32, "stake": "5"}, 422),
    ("/api/v1/admin/tasks", {"reward": 10**30}, 422),
    ("/api/v1/admin/tasks", {"performance_threshold": "NaN"}, 422),
    ("/api/v1/admin/tasks", {"expires_at": "0001-01-01T00:00:00+14:00"}, 422),
])
def test_admin_inputs_the_store_cannot_hold_are_422(tmp_path: Path, path: str, body: dict,
                                                    status: int) -> None:
    import asyncio

    from tests.unit.notary.support import admin_headers, asgi_client

    notary = Notary(tmp_path)
    if path.endswith("/tasks"):
        body = {"task_id": "t-2", "metric": "accuracy", "performance_threshold": 0.9,
                "dataset_hash": notary.task.dataset_hash, "max_training_time_seconds": 1.0,
                "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "reward": 1,
                **body}

    async def go():  # type: ignore[no-untyped-def]
        async with asgi_client(notary.app) as c:
            return await c.post(path, json=body, headers=admin_headers(notary.settings))

    r = asyncio.run(go())
    assert r.status_code == status and r.json()["error"] == "validation_error", r.text


def test_a_nan_threshold_is_refused_before_the_store_turns_it_into_null(tmp_path: Path) -> None:
    import asyncio

    from tests.unit.notary.support import admin_headers, asgi_client

    notary = Notary(tmp_path)
    raw = (b'{"task_id": "t-nan", "metric": "accuracy", "performance_threshold": NaN, '
           b'"dataset_hash": "' + notary.task.dataset_hash.encode() + b'", '
           b'"max_training_time_seconds": 1.0, "expires_at": "2099-01-01T00:00:00+00:00", '
           b'"reward": 1}')

    async def go():  # type: ignore[no-untyped-def]
        async with asgi_client(notary.app) as c:
            return await c.post("/api/v1/admin/tasks", content=raw, headers={
                **admin_headers(notary.settings), "content-type": "application/json"})

    r = asyncio.run(go())
    assert r.status_code == 400 and r.json()["error"] == "malformed_body"


@pytest.mark.parametrize("limit", ["1000000000", "-5", "0"])
def test_claim_listing_limits_are_bounded(tmp_path: Path, limit: str) -> None:
    from tests.unit.notary.support import admin_headers

    notary = Notary(tmp_path)
    r = notary.get(f"/api/v1/admin/claims?limit={limit}", headers=admin_headers(notary.settings))
    assert r.status_code == 422
