"""run_round's decisions: which dataset, when not to submit, what the report holds."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from hcp.errors import ValidationError
from hcp.notary import reference_task as rt
from hcp.notary.canonical import jcs_bytes
from hcp.notary.miner.client import NotaryClient
from hcp.notary.miner.keys import MinerKey
from hcp.notary.miner.round import RoundConfig, run_round
from hcp.notary.payload import parse_payload
from hcp.notary.sandbox.wasm import WasmtimeSandbox

KEY = MinerKey.generate()
OTHER_DATA = b"dataset-from-the-notary\n"


def _task(threshold: float, dataset_hash: str = rt.DATASET_HASH) -> dict:
    return {"task_id": "bc-logreg-v1", "performance_threshold": threshold,
            "metric": "test_accuracy", "dataset_hash": dataset_hash,
            "max_training_time_seconds": 30.0, "expires_at": None}


class FakeNotary:
    def __init__(self, task: dict) -> None:
        self.task = task
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/api/v1/task":
            return httpx.Response(200, json=self.task)
        if request.url.path.startswith("/api/v1/datasets/"):
            return httpx.Response(200, content=OTHER_DATA)
        if request.url.path == "/api/v1/submit":
            return httpx.Response(202, json={"status": "verified", "submission_id": "s1"})
        return httpx.Response(404, json={"error": "not_found"})

    def client(self) -> NotaryClient:
        return NotaryClient("http://n", http=httpx.Client(transport=httpx.MockTransport(self)),
                            sleep=lambda s: None)


CFG = RoundConfig(trials=2, seed=0, engine="random", fuel=50_000_000_000, memory_bytes=256 << 20)


def test_round_submits_the_locally_scored_claim() -> None:
    fake = FakeNotary(_task(0.5))
    report = run_round(fake.client(), KEY, WasmtimeSandbox(), CFG)
    assert report.verified and report.submitted and report.attempts == 1
    submit = fake.requests[-1]
    assert submit.url.path == "/api/v1/submit"
    body = submit.read()
    payload_json = body.split(b'name="payload"\r\n\r\n')[1].split(b"\r\n--")[0]
    parsed = parse_payload(payload_json, 4096)
    assert parsed.claimed_score == report.local_score == report.search["best_score"]
    assert parsed.artifact_hash == report.artifact_hash and parsed.nonce == report.nonce
    assert jcs_bytes(parsed.raw) == payload_json
    assert json.loads(json.dumps(report.to_dict()))["verified"] is True
    # The bundled reference data was used: no dataset download.
    assert not any(r.url.path.startswith("/api/v1/datasets") for r in fake.requests)


def test_below_threshold_is_not_submitted() -> None:
    fake = FakeNotary(_task(1.01))
    report = run_round(fake.client(), KEY, WasmtimeSandbox(), CFG)
    assert not report.submitted and not report.verified
    assert report.response["error"] == "below_threshold"
    assert all(r.url.path != "/api/v1/submit" for r in fake.requests)


def test_dataset_comes_from_the_notary_or_a_matching_local_file(tmp_path: Path) -> None:
    fake = FakeNotary(_task(0.0, rt.sha256_hash(OTHER_DATA)))
    # The notary's (garbage) dataset is downloaded and used: the module cannot score on it.
    with pytest.raises(ValidationError, match="no trial produced a score"):
        run_round(fake.client(), KEY, WasmtimeSandbox(), CFG)
    assert any(r.url.path.startswith("/api/v1/datasets/") for r in fake.requests)
    wrong = tmp_path / "d.csv"
    wrong.write_bytes(b"not it")
    with pytest.raises(ValidationError, match="does not match"):
        run_round(fake.client(), KEY, WasmtimeSandbox(),
                  RoundConfig(trials=1, dataset_path=wrong))


def test_unreadable_inputs_are_typed_errors(tmp_path: Path) -> None:
    fake = FakeNotary(_task(0.5))
    with pytest.raises(ValidationError, match="cannot read the module"):
        run_round(fake.client(), KEY, WasmtimeSandbox(),
                  RoundConfig(trials=1, wasm_path=tmp_path / "missing.wasm"))
    with pytest.raises(ValidationError, match="cannot read the dataset"):
        run_round(fake.client(), KEY, WasmtimeSandbox(),
                  RoundConfig(trials=1, dataset_path=tmp_path / "missing.csv"))
