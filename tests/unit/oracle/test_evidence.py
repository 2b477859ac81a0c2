"""Evidence bundles: canonical JSON named by its SHA-256, co-signed by k validators."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from hcp.errors import InvalidEvidenceError
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from hcp.oracle.audit import PossessionAuditor
from hcp.oracle.challenge import ImageTarget, answer_challenge
from hcp.oracle.evidence import (
    ArtifactRef,
    SignedBundle,
    build_bundle,
    bundle_signing_bytes,
    check_image_integrity,
    sign_bundle,
    verify_bundle,
)
from hcp.oracle.findings import Check, Finding, Outcome
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.signing import Signer
from tests.unit.oracle.conftest import World


def _bundle(world: World, store: EmbeddedStore):  # type: ignore[no-untyped-def]
    r = store.add([pattern_bytes("evidence", 700_000)])
    start = world.clock.now()
    heartbeats = []
    for seq in range(5):
        heartbeats.append(Heartbeat.signed(world.providers["prov-a"], seq, world.clock.now(),
                                           running_jobs=("job-9",)))
        world.clock.advance(seconds=60)
    heartbeats.append(Heartbeat.signed(world.providers["prov-b"], 1, start))  # not this provider
    aud = PossessionAuditor(world.validators[0], world.provider_keys, world.settings, world.clock)
    c = aud.challenge("prov-a", [ImageTarget(r.cid, "", r.size)], "r1")
    result = aud.submit(answer_challenge(c, store.get_block, world.providers["prov-a"],
                                         world.clock.now()))
    finding = Finding("prov-a", Check.POSSESSION, "possession:r1", Outcome.OK,
                      ("val-0", "val-1"), (), world.clock.now())
    logs = b"epoch 1 loss 0.3\n"
    bundle = build_bundle(
        "dsp-1", "job-9", "prov-a", start, world.clock.now() + timedelta(minutes=1),
        world.clock.now(), artifacts=[ArtifactRef("logs", "bafy-logs", hashlib.sha256(logs).hexdigest())],
        image=check_image_integrity(r.cid, store.get_block), heartbeats=heartbeats,
        challenges=[result], findings=[finding], chain_records=["0xabc", "0xdef"])
    return bundle, r


def test_a_bundle_holds_the_periods_evidence_in_canonical_json(world: World,
                                                                 store: EmbeddedStore) -> None:
    bundle, r = _bundle(world, store)
    doc = json.loads(bundle.canonical())
    assert [h["seq"] for h in doc["heartbeats"]] == [0, 1, 2, 3, 4]  # prov-b's left out
    assert doc["image"] == {"cid": str(r.cid), "intact": True, "blocks": 4,
                            "bytes": doc["image"]["bytes"], "detail": ""}
    assert doc["challenges"][0]["outcome"] == "ok" and doc["findings"][0]["outcome"] == "ok"
    assert doc["chain_records"] == ["0xabc", "0xdef"]
    assert bundle.sha256 == hashlib.sha256(bundle.canonical()).hexdigest()
    assert bundle.canonical() == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False).encode()


def test_k_validator_signatures_make_a_bundle_valid(world: World, store: EmbeddedStore) -> None:
    bundle, _ = _bundle(world, store)
    signed = sign_bundle(sign_bundle(bundle, world.validators[0]), world.validators[2])
    assert verify_bundle(signed, world.validator_verifier, 2, world.provider_verifier) == bundle.sha256
    sig = dict(signed.signatures)["val-0"]
    world.validators[0].key.verify_key.verify(bundle_signing_bytes(bundle), sig)
    one = sign_bundle(bundle, world.validators[0])
    with pytest.raises(InvalidEvidenceError):
        verify_bundle(one, world.validator_verifier, 2)
    # the same validator twice is still one signature; an outsider's counts for nothing
    twice = sign_bundle(one, world.validators[0])
    outsider = sign_bundle(one, Signer.generate("val-9"))
    for s in (twice, outsider):
        with pytest.raises(InvalidEvidenceError):
            verify_bundle(s, world.validator_verifier, 2)


def test_a_changed_bundle_loses_its_signatures(world: World, store: EmbeddedStore) -> None:
    bundle, _ = _bundle(world, store)
    signed = sign_bundle(sign_bundle(bundle, world.validators[0]), world.validators[1])
    edited = SignedBundle(replace(bundle, chain_records=("0xabc",)), signed.signatures)
    with pytest.raises(InvalidEvidenceError):
        verify_bundle(edited, world.validator_verifier, 2)


def test_a_heartbeat_the_provider_did_not_sign_is_caught(world: World, store: EmbeddedStore) -> None:
    bundle, _ = _bundle(world, store)
    forged_hb = {**bundle.heartbeats[0], "jobs": []}
    forged = replace(bundle, heartbeats=(forged_hb, *bundle.heartbeats[1:]))
    signed = sign_bundle(sign_bundle(forged, world.validators[0]), world.validators[1])
    assert verify_bundle(signed, world.validator_verifier, 2) == forged.sha256
    with pytest.raises(InvalidEvidenceError):
        verify_bundle(signed, world.validator_verifier, 2, world.provider_verifier)


def test_image_integrity_reports_a_damaged_image(world: World, store: EmbeddedStore) -> None:
    r = store.add([pattern_bytes("damaged", 600_000)])
    from hcp.images.exporter import walk

    leaf_cid = list(walk(r.cid, store.get_block))[-1][0]
    path = store.files.path(leaf_cid.key)
    path.write_bytes(b"not the block")
    res = check_image_integrity(r.cid, store.get_block)
    # root and the first two leaves check; the third does not
    assert not res.intact and res.blocks_checked == 3 and "block_hash_mismatch" in res.detail
