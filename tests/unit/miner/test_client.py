"""The notary client: task parsing, dataset checks, and retry with backoff on 429/503."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from hcp.notary.miner.claim import build_artifact, build_payload, sign_claim
from hcp.notary.miner.client import NotaryClient, RetryPolicy
from hcp.notary.miner.errors import NotaryRequestError
from hcp.notary.miner.keys import MinerKey
from hcp.notary.reference_task import sha256_hash

KEY = MinerKey.generate()
ARTIFACT = build_artifact(b"\0asm\x01\0\0\0", {"epochs": 3})
TASK = {"task_id": "bc-logreg-v1", "performance_threshold": 0.95, "metric": "test_accuracy",
        "dataset_hash": sha256_hash(b"a,b\n"), "max_training_time_seconds": 60.0,
        "expires_at": "2026-12-01T00:00:00+00:00", "reward": 100}


def _claim():
    return sign_claim(KEY, build_payload(KEY.miner_id, "bc-logreg-v1", 0.97, ARTIFACT), ARTIFACT)


def _client(handler: Callable[[httpx.Request], httpx.Response], **kw) -> tuple[NotaryClient,
                                                                               list[float]]:
    slept: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://notary")
    return NotaryClient("http://notary", http=http, sleep=slept.append, seed=1, **kw), slept


def _scripted(answers: list[httpx.Response | Exception], seen: list[httpx.Request]):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    return handler


def _parts(request: httpx.Request) -> bytes:
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    return request.read().replace(boundary, b"BOUNDARY")


def test_get_task_parses_the_wire_format() -> None:
    client, _ = _client(lambda r: httpx.Response(200, json=TASK))
    task = client.get_task()
    assert task.task_id == "bc-logreg-v1" and task.performance_threshold == 0.95
    assert task.max_training_time_seconds == 60.0 and task.expires_at.year == 2026


def test_get_task_errors_are_typed() -> None:
    client, _ = _client(lambda r: httpx.Response(404, json={"error": "no_active_task"}))
    with pytest.raises(NotaryRequestError, match="404") as err:
        client.get_task()
    assert err.value.status == 404
    client, _ = _client(lambda r: httpx.Response(200, json={"task_id": "x"}))
    with pytest.raises(NotaryRequestError, match="malformed task"):
        client.get_task()


def test_dataset_must_match_its_hash() -> None:
    client, _ = _client(lambda r: httpx.Response(200, content=b"a,b\n"))
    assert client.get_dataset(TASK["dataset_hash"]) == b"a,b\n"
    client, _ = _client(lambda r: httpx.Response(200, content=b"tampered\n"))
    with pytest.raises(NotaryRequestError, match="do not match"):
        client.get_dataset(TASK["dataset_hash"])


def test_submit_sends_the_wire_protocol_multipart() -> None:
    seen: list[httpx.Request] = []
    claim = _claim()
    client, slept = _client(_scripted([httpx.Response(202, json={"status": "verified"})], seen))
    out = client.submit(claim)
    assert out.verified and out.attempts == 1 and slept == []
    body = seen[0].read()
    assert seen[0].url.path == "/api/v1/submit"
    assert b'name="payload"' in body and claim.payload_json.encode() in body
    assert b'name="signature"' in body and claim.signature.encode() in body
    assert b'name="artifact"; filename="artifact.tar.gz"' in body and ARTIFACT in body


def test_429_retry_after_is_honoured_then_succeeds() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(429, json={"error": "rate_limited", "retry_after": 3}),
               httpx.Response(202, json={"status": "verified", "verified_score": 0.97})]
    client, slept = _client(_scripted(answers, seen))
    out = client.submit(_claim())
    assert out.verified and out.attempts == 2 and slept == [3.0]
    # The very same signed claim is resent (rate limiting happens before the nonce stage).
    assert _parts(seen[0]) == _parts(seen[1])


def test_retry_after_header_is_used_when_the_body_has_none() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "rate_limited"}),
               httpx.Response(202, json={"status": "verified"})]
    client, slept = _client(_scripted(answers, []))
    assert client.submit(_claim()).verified and slept == [7.0]


def test_503_backs_off_exponentially_and_gives_up() -> None:
    answers = [httpx.Response(503, json={"error": "sandbox_queue_full"}) for _ in range(4)]
    client, slept = _client(_scripted(answers, []),
                            retry=RetryPolicy(max_attempts=4, base_seconds=1.0))
    out = client.submit(_claim())
    assert out.status_code == 503 and out.attempts == 4 and out.error == "sandbox_queue_full"
    assert len(slept) == 3
    # Jittered within [0.5, 1] × 1, 2, 4 seconds: each wait is longer than the last.
    for i, s in enumerate(slept):
        assert 0.5 * 2**i <= s <= 2**i
    assert out.waited_seconds == pytest.approx(sum(slept))


def test_long_retry_after_is_reported_not_slept_through() -> None:
    answers = [httpx.Response(429, json={"error": "rate_limited", "retry_after": 3000})]
    client, slept = _client(_scripted(answers, []))
    out = client.submit(_claim())
    assert out.status_code == 429 and out.attempts == 1 and slept == []
    assert out.body["retry_after"] == 3000


@pytest.mark.parametrize("status,error", [(400, "hash_mismatch"), (403, "authentication_failed"),
                                          (422, "verification_failed"), (413, "too_large")])
def test_final_answers_are_not_retried(status: int, error: str) -> None:
    client, slept = _client(_scripted([httpx.Response(status, json={"error": error})], []))
    out = client.submit(_claim())
    assert (out.status_code, out.error, out.attempts, slept) == (status, error, 1, [])


def test_lost_response_then_replay_is_explained() -> None:
    answers = [httpx.ReadTimeout("lost"),
               httpx.Response(403, json={"error": "replay_detected", "nonce": "n"})]
    client, slept = _client(_scripted(answers, []))
    out = client.submit(_claim())
    assert out.status_code == 403 and out.attempts == 2 and len(slept) == 1
    assert "probably recorded" in out.body["note"]


def test_unreachable_notary_reports_after_all_attempts() -> None:
    answers: list = [httpx.ConnectError("refused") for _ in range(3)]
    client, slept = _client(_scripted(answers, []), retry=RetryPolicy(max_attempts=3))
    out = client.submit(_claim())
    assert out.status_code is None and out.error == "unreachable" and len(slept) == 2


def test_register_miner_needs_and_sends_an_admin_token() -> None:
    seen: list[httpx.Request] = []
    client, _ = _client(_scripted([httpx.Response(201, json={"miner_id": KEY.miner_id,
                                                             "stake": 500})], seen), token="tok")
    assert client.register_miner(KEY.miner_id, KEY.public_key_hex, 500)["stake"] == 500
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert json.loads(seen[0].read()) == {"miner_id": KEY.miner_id,
                                          "public_key": KEY.public_key_hex, "stake": 500}
    client, _ = _client(lambda r: httpx.Response(201, json={}))
    with pytest.raises(NotaryRequestError, match="admin token"):
        client.register_miner(KEY.miner_id, KEY.public_key_hex, 1)
    client, _ = _client(lambda r: httpx.Response(409, json={"error": "conflict"}), token="t")
    with pytest.raises(NotaryRequestError, match="409"):
        client.register_miner(KEY.miner_id, KEY.public_key_hex, 1)
