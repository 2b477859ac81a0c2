"""Every ML-Chain v6 answer of the notary, through HTTP (FastAPI app over httpx ASGI)."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hcp.notary.canonical import jcs_bytes, legacy_bytes
from serve_apps.notary.app import create_app
from tests.unit.notary import wat_modules as wat
from tests.unit.notary.support import (
    Miner,
    add_task,
    admin_headers,
    asgi_client,
    make_artifact,
    make_service,
    notary_settings,
    register,
)

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point


class Notary:
    def __init__(self, home: Path, **overrides: Any) -> None:
        self.settings = notary_settings(home, **overrides)
        self.svc = make_service(self.settings)
        self.app = create_app(self.settings, self.svc)
        self.task = add_task(self.svc)
        self.miner = Miner()
        register(self.svc, self.miner)

    def post(self, data: dict, files: dict | None = None, headers: dict | None = None) -> Any:
        async def go() -> Any:
            async with asgi_client(self.app) as c:
                return await c.post("/api/v1/submit", data=data, files=files, headers=headers)
        return asyncio.run(go())

    def many(self, requests: list[tuple[dict, dict]]) -> list[Any]:
        async def go() -> list[Any]:
            async with asgi_client(self.app) as c:
                return await asyncio.gather(*[c.post("/api/v1/submit", data=d, files=f)
                                              for d, f in requests])
        return asyncio.run(go())

    def get(self, path: str, headers: dict | None = None) -> Any:
        async def go() -> Any:
            async with asgi_client(self.app) as c:
                return await c.get(path, headers=headers)
        return asyncio.run(go())


@pytest.fixture
def notary(tmp_path: Path) -> Notary:
    return Notary(tmp_path)


GOOD = make_artifact(wat.score_wasm("0.9731"), {"lr": 0.1})


def test_task_endpoint(notary: Notary) -> None:
    r = notary.get("/api/v1/task")
    assert r.status_code == 200
    body = r.json()
    assert body["task_id"] == "task-1"
    assert body["dataset_hash"] == notary.task.dataset_hash
    assert set(body) >= {"performance_threshold", "metric", "max_training_time_seconds",
                         "expires_at"}
    d = notary.get(f"/api/v1/datasets/{body['dataset_hash']}")
    assert d.status_code == 200 and d.content.startswith(b"x,y")


def test_verified_claim_202_and_recorded(notary: Notary) -> None:
    data, files = notary.miner.form(GOOD, 0.9731)
    r = notary.post(data, files)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "verified"
    assert body["verified_score"] == pytest.approx(0.9731)
    claim = notary.svc.ledger.claim(body["submission_id"])
    assert claim.status == "verified" and claim.nonce == json.loads(data["payload"])["nonce"]
    assert claim.reward == 1000
    assert notary.svc.ledger.miner(notary.miner.miner_id).balance == 1000
    stored = Path(claim.artifact_uri.removeprefix("file://"))
    assert stored.read_bytes() == GOOD and notary.settings.home in stored.parents


def test_signature_in_header_is_accepted(notary: Notary) -> None:
    data, files = notary.miner.form(GOOD, 0.9731)
    sig = data.pop("signature")
    r = notary.post(data, files, headers={"X-Signature": sig})
    assert r.status_code == 202, r.text


def test_score_within_tolerance_passes_and_beyond_fails(notary: Notary) -> None:
    ok = notary.post(*notary.miner.form(GOOD, 0.9731 + 0.0009))
    assert ok.status_code == 202, ok.text
    bad = notary.post(*notary.miner.form(GOOD, 0.9731 + 0.0015))
    assert bad.status_code == 422
    assert bad.json()["error"] == "verification_failed"
    assert bad.json()["details"].startswith("Score mismatch")


def test_below_threshold_is_422(notary: Notary) -> None:
    art = make_artifact(wat.score_wasm("0.5"))
    r = notary.post(*notary.miner.form(art, 0.5))
    assert r.status_code == 422
    assert r.json()["details"].startswith("Score below threshold")


def test_infinite_loop_times_out_422(tmp_path: Path) -> None:
    n = Notary(tmp_path)
    art = make_artifact(wat.infinite_loop_wasm())
    r = n.post(*n.miner.form(art, 0.99))
    assert r.status_code == 422
    assert r.json()["details"].startswith("Sandbox execution timed out")
    assert r.json()["outcome"] == "timeout"


@pytest.mark.parametrize("module,outcome", [
    (wat.memory_bomb_wasm, "out_of_memory"),
    (wat.trap_wasm, "trap"),
    (lambda: b"\0asm garbage", "invalid_wasm"),
])
def test_sandbox_failures_are_422(notary: Notary, module: Any, outcome: str) -> None:
    r = notary.post(*notary.miner.form(make_artifact(module()), 0.99))
    assert r.status_code == 422
    assert r.json()["error"] == "verification_failed"
    assert r.json()["outcome"] == outcome


def test_unknown_miner_bad_signature_revoked_are_403(notary: Notary) -> None:
    stranger = Miner()
    r = notary.post(*stranger.form(GOOD, 0.9731))
    assert r.status_code == 403 and r.json()["error"] == "authentication_failed"

    data, files = notary.miner.form(GOOD, 0.9731)
    data["signature"] = "00" * 64
    assert notary.post(data, files).json()["error"] == "authentication_failed"

    data, files = notary.miner.form(GOOD, 0.9731)
    del data["signature"]
    assert notary.post(data, files).status_code == 403

    data, files = notary.miner.form(GOOD, 0.9731)
    data["signature"] = "zz"
    assert notary.post(data, files).status_code == 403

    notary.svc.ledger.revoke_miner(notary.miner.miner_id, notary.svc.clock.now())
    r = notary.post(*notary.miner.form(GOOD, 0.9731))
    assert r.status_code == 403 and r.json()["error"] == "authentication_failed"


def test_signature_for_a_different_payload_is_rejected(notary: Notary) -> None:
    payload = notary.miner.payload(GOOD, 0.9731)
    signature = notary.miner.sign(payload)
    inflated = dict(payload, claimed_score=0.9999)
    r = notary.post({"payload": json.dumps(inflated), "signature": signature},
                    {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 403 and r.json()["error"] == "authentication_failed"


def test_non_canonical_malleable_signature_is_rejected(notary: Notary) -> None:
    payload = notary.miner.payload(GOOD, 0.9731)
    sig = bytes.fromhex(notary.miner.sign(payload))
    s = int.from_bytes(sig[32:], "little")
    malleable = sig[:32] + (s + L).to_bytes(32, "little")  # same point equation, S >= L
    # The original verifies (checked through HTTP below); the S+L twin must not.
    r = notary.post({"payload": json.dumps(payload), "signature": malleable.hex()},
                    {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 403 and r.json()["error"] == "authentication_failed"
    ok = notary.post({"payload": json.dumps(payload), "signature": sig.hex()},
                     {"artifact": ("a.tar.gz", GOOD)})
    assert ok.status_code == 202, ok.text


def test_payload_serialization_does_not_matter_only_canonical_form(notary: Notary) -> None:
    payload = notary.miner.payload(GOOD, 0.9731)
    text = json.dumps(payload, indent=3)  # not canonical on the wire; signature is over canonical
    assert text.encode() not in (jcs_bytes(payload), legacy_bytes(payload))
    r = notary.post({"payload": text, "signature": notary.miner.sign(payload)},
                    {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 202, r.text


def test_jcs_and_legacy_signatures_both_verify(notary: Notary) -> None:
    """A score of 1.0 is ``1`` in RFC 8785 and ``1.0`` in the legacy form: the two signed byte
    strings differ, and a signature over either verifies."""
    art = make_artifact(wat.score_wasm("1.0"))
    probe = notary.miner.payload(art, 1.0)
    assert jcs_bytes(probe) != legacy_bytes(probe)
    for canonical in ("jcs", "legacy"):
        r = notary.post(*notary.miner.form(art, 1.0, canonical=canonical))
        assert r.status_code == 202, (canonical, r.text)
        assert r.json()["status"] == "verified"


def test_a_foreign_miners_jcs_text_verifies(notary: Notary) -> None:
    """A miner in another language sends its JCS bytes as the payload (``1e-7``, which Python's
    json.dumps writes ``1e-07``): the signature verifies — the claim then fails on its score,
    a 422, not on its signature, a 403."""
    art = make_artifact(wat.score_wasm("1e-7"))
    payload = notary.miner.payload(art, 1e-7)
    wire = jcs_bytes(payload)
    assert b'"claimed_score":1e-7' in wire and b"1e-07" in legacy_bytes(payload)
    sig = notary.miner.key.sign(wire).signature.hex()
    r = notary.post({"payload": wire.decode(), "signature": sig}, {"artifact": ("a.tar.gz", art)})
    assert r.status_code == 422, r.text
    assert r.json()["details"].startswith("Score below threshold")


def test_a_signature_over_neither_canonical_form_is_refused(notary: Notary) -> None:
    payload = notary.miner.payload(GOOD, 0.9731)
    text = json.dumps(payload, indent=1)
    sig = notary.miner.key.sign(text.encode()).signature.hex()  # over the wire text itself
    r = notary.post({"payload": text, "signature": sig}, {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 403 and r.json()["error"] == "authentication_failed"


def test_replay_is_403_with_nonce(notary: Notary) -> None:
    data, files = notary.miner.form(GOOD, 0.9731)
    assert notary.post(data, files).status_code == 202
    again = notary.post(data, files)
    assert again.status_code == 403
    assert again.json()["error"] == "replay_detected"
    assert again.json()["nonce"] == json.loads(data["payload"])["nonce"]


def test_replay_after_fast_store_expiry_still_fails(notary: Notary) -> None:
    from sqlalchemy import delete

    from hcp.notary.models import Nonce

    data, files = notary.miner.form(GOOD, 0.9731)
    assert notary.post(data, files).status_code == 202
    with notary.svc.ledger.engine.begin() as conn:  # what a TTL expiry does to the fast store
        conn.execute(delete(Nonce))
    again = notary.post(data, files)
    assert again.status_code == 403 and again.json()["error"] == "replay_detected"


def test_hash_mismatch_is_400(notary: Notary) -> None:
    other = make_artifact(wat.score_wasm("0.9731"), {"lr": 0.2})
    payload = notary.miner.payload(GOOD, 0.9731)
    r = notary.post({"payload": json.dumps(payload), "signature": notary.miner.sign(payload)},
                    {"artifact": ("a.tar.gz", other)})
    assert r.status_code == 400 and r.json()["error"] == "hash_mismatch"


@pytest.mark.parametrize("payload_text,code", [
    ("{not json", "invalid_payload_json"),
    ("[1, 2]", "invalid_payload_json"),
    ('{"miner_id": "a", "miner_id": "b"}', "invalid_payload_json"),
    ("{}", "missing_field"),
])
def test_malformed_payload_json_is_400(notary: Notary, payload_text: str, code: str) -> None:
    r = notary.post({"payload": payload_text, "signature": "00" * 64},
                    {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 400 and r.json()["error"] == code


@pytest.mark.parametrize("field,value", [
    ("miner_id", "not-a-uuid"),
    ("nonce", "6f1c2c1e-3f0e-11ee-be56-0242ac120002"),  # UUID v1, not v4
    ("claimed_score", "high"),
    ("claimed_score", True),
    ("artifact_hash", "md5:abc"),
    ("timestamp", "yesterday"),
    ("timestamp", "2001-01-01T00:00:00+00:00"),
    ("task_id", "../etc"),
])
def test_malformed_fields_are_400(notary: Notary, field: str, value: Any) -> None:
    payload = notary.miner.payload(GOOD, 0.9731)
    payload[field] = value
    r = notary.post({"payload": json.dumps(payload), "signature": notary.miner.sign(payload)},
                    {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 400, r.text
    assert r.json()["error"] in ("invalid_payload_field", "unknown_task")


def test_unknown_task_is_400(notary: Notary) -> None:
    r = notary.post(*notary.miner.form(GOOD, 0.9731, task_id="nope"))
    assert r.status_code == 400 and r.json()["error"] == "unknown_task"


def test_missing_artifact_and_payload_are_400(notary: Notary) -> None:
    data, _ = notary.miner.form(GOOD, 0.9731)
    r = notary.post(data, {"other": ("x", b"1")})
    assert r.status_code == 400 and r.json()["error"] == "missing_field"
    r = notary.post({"signature": "00"}, {"artifact": ("a.tar.gz", GOOD)})
    assert r.status_code == 400 and r.json()["error"] == "missing_field"


def test_malformed_multipart_is_400(notary: Notary) -> None:
    async def go() -> list[Any]:
        async with asgi_client(notary.app) as c:
            broken = await c.post("/api/v1/submit", content=b"--xyz\r\nContent-Disposition: "
                                  b"form-data; name=\"payload\"\r\n\r\nabc",
                                  headers={"Content-Type": "multipart/form-data; boundary=xyz"})
            no_boundary = await c.post("/api/v1/submit", content=b"abc",
                                       headers={"Content-Type": "multipart/form-data"})
            as_json = await c.post("/api/v1/submit", json={"payload": "{}"})
            return [broken, no_boundary, as_json]
    for r in asyncio.run(go()):
        assert r.status_code == 400, r.text
        assert r.json()["error"] in ("bad_submission", "missing_field")


def test_oversize_artifact_is_413(tmp_path: Path) -> None:
    n = Notary(tmp_path, notary_max_artifact_bytes=2048)
    import os

    big = make_artifact(wat.score_wasm(), extra={"pad.bin": os.urandom(8 * 1024)})
    huge = make_artifact(wat.score_wasm(), extra={"pad.bin": os.urandom(200 * 1024)})
    for art in (big, huge):  # over the artifact cap; and over the whole-body cap
        r = n.post(*n.miner.form(art, 0.9731))
        assert r.status_code == 413, r.text
        assert r.json()["error"] in ("payload_too_large", "artifact_too_large")


def test_unsafe_artifacts_are_refused(notary: Notary) -> None:
    def tar_with(info: tarfile.TarInfo, data: bytes | None = None) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            w = tarfile.TarInfo("train.wasm")
            wasm = wat.score_wasm()
            w.size = len(wasm)
            t.addfile(w, io.BytesIO(wasm))
            t.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()

    up = tarfile.TarInfo("../escape.txt")
    up.size = 1
    link = tarfile.TarInfo("hyperparameters.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for art in (tar_with(up, b"x"), tar_with(link), b"not a tarball"):
        r = notary.post(*notary.miner.form(art, 0.9731))
        assert r.status_code == 400 and r.json()["error"] == "invalid_artifact", r.text


def test_quota_429_after_limit_and_retry_after(tmp_path: Path) -> None:
    n = Notary(tmp_path, notary_miner_limit=2)
    codes = [n.post(*n.miner.form(GOOD, 0.9731)).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    r = n.post(*n.miner.form(GOOD, 0.9731))
    assert r.status_code == 429
    assert 0 < r.json()["retry_after"] <= 3600
    assert int(r.headers["Retry-After"]) == r.json()["retry_after"]


def test_garbage_under_a_miner_id_does_not_spend_its_quota(tmp_path: Path) -> None:
    n = Notary(tmp_path, notary_miner_limit=2)
    for _ in range(5):
        data, files = n.miner.form(GOOD, 0.9731)
        data["signature"] = "11" * 64
        assert n.post(data, files).status_code == 403
    assert [n.post(*n.miner.form(GOOD, 0.9731)).status_code for _ in range(2)] == [202, 202]


def test_concurrent_flood_limit_holds_exactly(tmp_path: Path) -> None:
    n = Notary(tmp_path, notary_miner_limit=7)
    responses = n.many([n.miner.form(GOOD, 0.9731) for _ in range(24)])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 7 and codes.count(429) == 17, codes
    assert len(n.svc.ledger.list_claims(n.miner.miner_id)) == 7


def test_client_flood_guard_runs_before_anything(tmp_path: Path) -> None:
    n = Notary(tmp_path, notary_client_limit=5)
    responses = n.many([({"payload": "garbage"}, {"artifact": ("a", b"x")}) for _ in range(12)])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(400) == 5 and codes.count(429) == 7, codes


def test_queue_full_is_503_and_nonce_is_released(tmp_path: Path) -> None:
    n = Notary(tmp_path, notary_sandbox_workers=1, notary_sandbox_queue=0)
    slow = make_artifact(wat.infinite_loop_wasm())
    forms = [n.miner.form(slow, 0.99) for _ in range(3)]
    responses = n.many(forms)
    codes = sorted(r.status_code for r in responses)
    assert 503 in codes and 422 in codes, codes
    busy = [(f, r) for f, r in zip(forms, responses, strict=True) if r.status_code == 503]
    assert busy[0][1].json()["error"] == "sandbox_queue_full"
    # The refused claim's nonce was released: the same signed claim can be retried.
    retry = n.post(*busy[0][0])
    assert retry.status_code == 422 and retry.json()["details"].startswith(
        "Sandbox execution timed out")


def test_admin_endpoints(notary: Notary) -> None:
    hdr = admin_headers(notary.settings)
    miner = Miner()

    async def go() -> dict[str, Any]:
        async with asgi_client(notary.app) as c:
            out: dict[str, Any] = {}
            out["anon"] = await c.post("/api/v1/admin/miners", json={})
            body = {"miner_id": miner.miner_id, "public_key": miner.public_hex, "stake": 500}
            out["reg"] = await c.post("/api/v1/admin/miners", json=body, headers=hdr)
            out["dup"] = await c.post("/api/v1/admin/miners", json=body, headers=hdr)
            out["badkey"] = await c.post("/api/v1/admin/miners", headers=hdr, json=dict(
                body, miner_id=str(__import__("uuid").uuid4()), public_key="abcd"))
            out["list"] = await c.get("/api/v1/admin/miners", headers=hdr)
            out["ds"] = await c.post("/api/v1/admin/datasets", headers=hdr,
                                     files={"file": ("d.csv", b"a,b\n5,6\n")})
            task = {"task_id": "task-2", "metric": "accuracy", "performance_threshold": 0.5,
                    "dataset_hash": out["ds"].json()["dataset_hash"],
                    "max_training_time_seconds": 5, "expires_at": "2099-01-01T00:00:00Z",
                    "reward": 7}
            out["task"] = await c.post("/api/v1/admin/tasks", json=task, headers=hdr)
            out["active"] = await c.get("/api/v1/task")
            out["badds"] = await c.post("/api/v1/admin/tasks", headers=hdr, json=dict(
                task, task_id="task-3", dataset_hash="sha256:" + "0" * 64))
            out["revoke"] = await c.post(f"/api/v1/admin/miners/{miner.miner_id}/revoke",
                                         headers=hdr)
            out["close"] = await c.post("/api/v1/admin/tasks/task-2/close", headers=hdr)
            out["after"] = await c.get("/api/v1/task")
            out["metrics"] = await c.get("/metrics")
            return out

    out = asyncio.run(go())
    assert out["anon"].status_code == 401
    assert out["reg"].status_code == 201 and out["reg"].json()["stake"] == 500
    assert out["dup"].status_code == 409
    assert out["badkey"].status_code == 422
    assert miner.miner_id in {m["miner_id"] for m in out["list"].json()}
    assert out["task"].status_code == 201, out["task"].text
    assert out["active"].json()["task_id"] == "task-2"
    assert out["badds"].status_code == 422
    assert out["revoke"].json()["status"] == "revoked"
    assert out["after"].json()["task_id"] == "task-1"
    assert out["metrics"].status_code == 200


def test_customer_token_cannot_admin(notary: Notary) -> None:
    from hcp.auth.tokens import Role, TokenService

    tok = TokenService.from_settings(notary.settings).issue("bob", Role.CUSTOMER)
    r = notary.get("/api/v1/admin/miners", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403


def test_metrics_count_stages_and_rejections(notary: Notary) -> None:
    notary.post(*notary.miner.form(GOOD, 0.9731))
    notary.post(*notary.miner.form(GOOD, 0.5))
    text = notary.get("/metrics").text
    assert 'hcp_notary_rejections_total{reason="verification_failed"} 1.0' in text
    assert "hcp_notary_verified_total 1.0" in text
    assert 'hcp_notary_stage_seconds_count{stage="sandbox"} 2.0' in text
    assert "hcp_notary_verification_seconds_count 1.0" in text


def test_concurrent_replays_of_one_claim_verify_once(notary: Notary) -> None:
    form = notary.miner.form(GOOD, 0.9731)
    responses = notary.many([form] * 8)
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [403] * 7, codes
    assert {r.json()["error"] for r in responses if r.status_code == 403} == {"replay_detected"}
    assert len(notary.svc.ledger.list_claims(notary.miner.miner_id)) == 1
