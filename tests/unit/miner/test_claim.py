"""Artifacts are deterministic; payloads are what the notary parses; signatures verify."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from pathlib import Path

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import ValidationError
from hcp.notary.artifact import safe_extract
from hcp.notary.canonical import jcs_bytes
from hcp.notary.miner.claim import artifact_hash, build_artifact, build_payload, sign_claim
from hcp.notary.miner.keys import MinerKey
from hcp.notary.payload import parse_payload

KEY = MinerKey.generate()
WASM = b"\0asm\x01\0\0\0" + bytes(range(200))
PARAMS = {"learning_rate": 0.05, "epochs": 30, "seed": 3}


def _verify(claim_payload_json: str, signature_hex: str, public_hex: str) -> None:
    nacl.signing.VerifyKey(bytes.fromhex(public_hex)).verify(
        claim_payload_json.encode(), bytes.fromhex(signature_hex))


def test_artifact_is_deterministic_and_carries_no_time_or_owner() -> None:
    a = build_artifact(WASM, PARAMS)
    assert a == build_artifact(WASM, dict(reversed(list(PARAMS.items()))))
    assert a[4:8] == b"\0\0\0\0"  # gzip header MTIME
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(a))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["train.wasm", "hyperparameters.json"]
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" and m.mode == 0o644
               for m in members)
    assert build_artifact(WASM, {**PARAMS, "seed": 4}) != a


def test_artifact_extracts_safely_with_the_notary_extractor(tmp_path: Path) -> None:
    paths = safe_extract(build_artifact(WASM, PARAMS), tmp_path, 16, 1 << 20)
    assert sorted(p.name for p in paths) == ["hyperparameters.json", "train.wasm"]
    assert (tmp_path / "train.wasm").read_bytes() == WASM
    assert json.loads((tmp_path / "hyperparameters.json").read_text()) == PARAMS
    only_wasm = safe_extract(build_artifact(WASM, None), tmp_path / "w", 16, 1 << 20)
    assert [p.name for p in only_wasm] == ["train.wasm"]


def test_signed_payload_is_what_the_notary_parses_and_verifies() -> None:
    artifact = build_artifact(WASM, PARAMS)
    payload = build_payload(KEY.miner_id, "bc-logreg-v1", 0.982301, artifact)
    claim = sign_claim(KEY, payload, artifact)
    assert payload["artifact_hash"] == artifact_hash(artifact)
    assert payload["artifact_hash"].startswith("sha256:") and len(payload["artifact_hash"]) == 71
    assert uuid.UUID(claim.nonce).version == 4
    parsed = parse_payload(claim.payload_json, 4096)
    assert parsed.miner_id == KEY.miner_id and parsed.claimed_score == 0.982301
    # The notary re-canonicalizes the parsed payload: it must be the exact signed bytes.
    assert jcs_bytes(parsed.raw) == claim.payload_json.encode()
    _verify(jcs_bytes(parsed.raw).decode(), claim.signature, KEY.public_key_hex)


def test_signature_does_not_cover_a_different_payload() -> None:
    artifact = build_artifact(WASM, PARAMS)
    claim = sign_claim(KEY, build_payload(KEY.miner_id, "t1", 0.9, artifact), artifact)
    inflated = jcs_bytes({**claim.payload, "claimed_score": 0.99}).decode()
    with pytest.raises(nacl.exceptions.BadSignatureError):
        _verify(inflated, claim.signature, KEY.public_key_hex)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        _verify(claim.payload_json, claim.signature, MinerKey.generate().public_key_hex)


def test_fresh_nonce_per_payload_and_consistency_checks() -> None:
    artifact = build_artifact(WASM, None)
    nonces = {build_payload(KEY.miner_id, "t", 0.9, artifact)["nonce"] for _ in range(50)}
    assert len(nonces) == 50
    payload = build_payload(KEY.miner_id, "t", 0.9, artifact)
    with pytest.raises(ValidationError, match="artifact_hash"):
        sign_claim(KEY, payload, artifact + b"x")
    with pytest.raises(ValidationError, match="miner_id"):
        sign_claim(MinerKey.generate(), payload, artifact)
    with pytest.raises(ValidationError):
        build_payload(KEY.miner_id, "t", float("nan"), artifact)


@settings(max_examples=60, deadline=None)
@given(score=st.floats(-1e6, 1e6, allow_nan=False),
       task=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True),
       wasm=st.binary(min_size=1, max_size=64))
def test_any_claim_round_trips_through_the_notary_parser(score: float, task: str,
                                                          wasm: bytes) -> None:
    artifact = build_artifact(wasm, None)
    claim = sign_claim(KEY, build_payload(KEY.miner_id, task, score, artifact), artifact)
    parsed = parse_payload(claim.payload_json, 4096)
    assert (parsed.task_id, parsed.claimed_score, parsed.nonce) == (task, score, claim.nonce)
    assert jcs_bytes(parsed.raw) == claim.payload_json.encode()
    _verify(claim.payload_json, claim.signature, KEY.public_key_hex)
