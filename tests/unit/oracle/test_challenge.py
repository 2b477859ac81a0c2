"""Possession challenges against a real block store: an honest answer passes on the CID
alone; a deleted or altered image is data fraud; timeouts, bad signatures, replays and
misaddressed answers are told apart."""

from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from hcp.errors import (
    AnswerMismatchError,
    AnswerReplayedError,
    CrossProviderAnswerError,
    OracleSignatureError,
    StaleMessageError,
    UnknownChallengeError,
    ValidationError,
)
from hcp.images.catalog import ImageCatalog
from hcp.images.cids import Cid
from hcp.images.params import KUBO_CIDV1
from hcp.images.patterns import pattern_bytes
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from hcp.oracle.audit import PossessionAuditor, ProofVerdict, check_proof
from hcp.oracle.challenge import (
    ChallengeAnswer,
    ImageTarget,
    PossessionChallenge,
    answer_challenge,
    build_challenge,
    choose_range,
    sign_answer,
    targets_for_image,
)
from hcp.oracle.findings import Check, Outcome
from hcp.oracle.signing import Signer
from tests.unit.images.archives import classic_archive, image_parts
from tests.unit.oracle.conftest import World

FILE = 3 * 256 * 1024 + 12_345  # four leaves under one root


@pytest.fixture
def file_target(store: EmbeddedStore) -> ImageTarget:
    r = store.add([pattern_bytes("oracle", FILE)])
    return ImageTarget(r.cid, "", r.size)


@pytest.fixture
def image_targets(store: EmbeddedStore) -> list[ImageTarget]:
    config, layers = image_parts("ora")
    _img, info = ImageService(store, ImageCatalog(store.engine)).push_archive(
        io.BytesIO(classic_archive(config, layers, ["app:1"])), uploader="prov-a")
    return targets_for_image(info.cid, info.layers)


def _auditor(world: World, i: int = 0) -> PossessionAuditor:
    return PossessionAuditor(world.validators[i], world.provider_keys, world.settings, world.clock)


def _answer(world: World, c: PossessionChallenge, store: EmbeddedStore,
            provider: str = "prov-a") -> ChallengeAnswer:
    return answer_challenge(c, store.get_block, world.providers[provider], world.clock.now(),
                            world.validator_verifier)


def test_honest_answer_passes_on_the_cid_alone(world: World, store: EmbeddedStore,
                                               file_target: ImageTarget) -> None:
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    assert c.length == 1024 and 0 <= c.offset <= FILE - 1024
    assert c.expires_at - c.issued_at == timedelta(seconds=30)
    a = _answer(world, c, store)
    world.clock.advance(seconds=2)
    # the wire forms are what travels between the validator and the agent
    res = aud.submit(ChallengeAnswer.from_wire(a.to_wire()))
    assert (res.outcome, res.response_ms, res.detail) == (Outcome.OK, 2000, "ok")
    obs = res.observation()
    assert obs is not None and (obs.check, obs.subject, obs.outcome, obs.response_ms) == (
        Check.POSSESSION, "possession:r1", Outcome.OK, 2000)
    assert 2 <= len(a.blocks) <= 3  # the root and one or two leaves, not the file
    assert aud.pending() == []


def test_layers_of_a_docker_image_are_challenged_through_its_directory(
        world: World, store: EmbeddedStore, image_targets: list[ImageTarget]) -> None:
    aud = _auditor(world)
    assert all(t.path.startswith("blobs/sha256/") for t in image_targets)
    for i in range(6):
        c = aud.challenge("prov-a", image_targets, round_id=f"r{i}")
        assert c.path in {t.path for t in image_targets}
        assert aud.submit(_answer(world, c, store)).outcome is Outcome.OK


def test_a_deleted_image_is_data_fraud(world: World, store: EmbeddedStore,
                                       file_target: ImageTarget) -> None:
    store.unpin(file_target.cid)
    assert store.gc().removed_blocks > 0
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    a = _answer(world, c, store)  # the agent answers with what it has: nothing
    assert a.blocks == () and a.digest == b""
    res = aud.submit(a)
    assert res.outcome is Outcome.DATA_FRAUD and "lacks block" in res.detail
    assert res.evidence is not None and len(res.evidence) == 64


def test_a_deleted_layer_is_data_fraud_while_the_rest_of_the_image_passes(
        world: World, store: EmbeddedStore, image_targets: list[ImageTarget]) -> None:
    big = max(image_targets, key=lambda t: t.size)
    leaf = store.files.path(_file_cid(store, big).key)
    leaf.unlink()  # the provider lost (or dropped) the layer's block
    aud = _auditor(world)
    res = aud.submit(_answer(world, aud.challenge("prov-a", [big], "r1"), store))
    assert res.outcome is Outcome.DATA_FRAUD
    small = min(image_targets, key=lambda t: t.size)
    assert aud.submit(_answer(world, aud.challenge("prov-a", [small], "r2"), store)).outcome \
        is Outcome.OK


def _file_cid(store: EmbeddedStore, t: ImageTarget) -> Cid:
    from hcp.images.exporter import resolve_path

    return resolve_path(t.cid, t.path, store.get_block)


def test_tampered_bytes_signed_by_the_provider_are_data_fraud(
        world: World, store: EmbeddedStore, file_target: ImageTarget) -> None:
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    honest = _answer(world, c, store)
    leaf = bytearray(honest.blocks[-1])
    leaf[len(leaf) // 2] ^= 0xFF
    lie = sign_answer(replace(honest, blocks=(*honest.blocks[:-1], bytes(leaf))), c,
                      world.providers["prov-a"])
    res = aud.submit(lie)
    assert res.outcome is Outcome.DATA_FRAUD


def test_a_digest_that_does_not_bind_the_nonce_is_data_fraud(
        world: World, store: EmbeddedStore, file_target: ImageTarget) -> None:
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    honest = _answer(world, c, store)
    stale = sign_answer(replace(honest, digest=b"\0" * 32), c, world.providers["prov-a"])
    assert aud.submit(stale).outcome is Outcome.DATA_FRAUD


def test_no_answer_is_a_timeout_and_a_late_answer_too(world: World, store: EmbeddedStore,
                                                      file_target: ImageTarget) -> None:
    aud = _auditor(world)
    silent = aud.challenge("prov-a", [file_target], round_id="r1")
    late = aud.challenge("prov-b", [file_target], round_id="r1")
    late_answer = answer_challenge(late, store.get_block, world.providers["prov-b"],
                                   world.clock.now())
    world.clock.advance(seconds=30)
    assert aud.expire() == []  # the expiry itself is still in time
    world.clock.advance(seconds=1)
    res = aud.submit(late_answer)
    assert (res.outcome, res.response_ms) == (Outcome.TIMEOUT, 31_000)
    [expired] = aud.expire()
    assert expired.challenge == silent and expired.outcome is Outcome.TIMEOUT
    assert expired.response_ms is None


def test_a_bad_signature_is_refused_and_leaves_the_challenge_open(
        world: World, store: EmbeddedStore, file_target: ImageTarget) -> None:
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    forged = answer_challenge(c, store.get_block, Signer.generate("prov-a"), world.clock.now())
    with pytest.raises(OracleSignatureError):
        aud.submit(forged)
    assert aud.pending() == [c]
    # the genuine answer, arriving after the forgery, still counts
    assert aud.submit(_answer(world, c, store)).outcome is Outcome.OK
    c2 = aud.challenge("prov-a", [file_target], round_id="r2")
    with pytest.raises(OracleSignatureError):
        aud.submit(answer_challenge(c2, store.get_block, Signer.generate("prov-a"),
                                    world.clock.now()))
    world.clock.advance(seconds=31)
    [res] = aud.expire()
    assert res.outcome is Outcome.BAD_SIGNATURE


def test_replayed_answers_are_refused(world: World, store: EmbeddedStore,
                                      file_target: ImageTarget) -> None:
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    a = _answer(world, c, store)
    assert aud.submit(a).outcome is Outcome.OK
    with pytest.raises(AnswerReplayedError) as e:
        aud.submit(a)
    assert e.value.http_status == 403
    # replaying it against a fresh challenge of the same range fails too: another nonce/id
    c2 = aud.challenge("prov-a", [file_target], round_id="r2")
    with pytest.raises(AnswerReplayedError):
        aud.submit(a)
    with pytest.raises(UnknownChallengeError):
        aud.submit(replace(a, challenge_id="f" * 32))
    moved = replace(a, challenge_id=c2.challenge_id)
    with pytest.raises(AnswerMismatchError):
        aud.submit(moved)
    assert aud.pending() == [c2]


def test_answers_for_another_providers_challenge_are_refused(
        world: World, store: EmbeddedStore, file_target: ImageTarget) -> None:
    aud = _auditor(world)
    c = aud.challenge("prov-a", [file_target], round_id="r1")
    with pytest.raises(CrossProviderAnswerError):  # the agent refuses to answer it
        answer_challenge(c, store.get_block, world.providers["prov-b"], world.clock.now())
    # prov-b answers prov-a's challenge in its own name
    honest = _answer(world, c, store)
    theirs = sign_answer(replace(honest, provider_id="prov-b"), c, world.providers["prov-b"])
    with pytest.raises(CrossProviderAnswerError):
        aud.submit(theirs)
    # or in prov-a's name with its own key: not prov-a's signature
    spoof = sign_answer(honest, c, Signer("prov-a", world.providers["prov-b"].key))
    with pytest.raises(OracleSignatureError):
        aud.submit(spoof)
    assert aud.submit(honest).outcome is Outcome.OK


def test_the_agent_refuses_forged_and_expired_challenges(
        world: World, store: EmbeddedStore, file_target: ImageTarget) -> None:
    stranger = Signer.generate("val-9")
    fake = build_challenge(stranger, "prov-a", [file_target], "r1", world.clock.now(),
                           world.settings)
    with pytest.raises(OracleSignatureError):
        _answer(world, fake, store)
    real = build_challenge(world.validators[1], "prov-a", [file_target], "r1",
                           world.clock.now(), world.settings)
    with pytest.raises(OracleSignatureError):  # altered in transit
        _answer(world, replace(real, offset=0 if real.offset else 1), store)
    world.clock.advance(seconds=31)
    with pytest.raises(StaleMessageError):
        _answer(world, real, store)


def test_a_challenge_the_cid_disproves_is_void_not_the_providers_fault(
        world: World, store: EmbeddedStore, file_target: ImageTarget,
        image_targets: list[ImageTarget]) -> None:
    aud = _auditor(world)
    wrong_size = replace(file_target, size=FILE + 10_000)  # the metadata overstates the file
    rng = random.Random(3)
    while True:
        c = aud.challenge("prov-a", [wrong_size], "r1", rng=rng)
        if c.offset >= FILE:
            break
        aud.submit(_answer(world, c, store))
    res = aud.submit(_answer(world, c, store))
    assert res.outcome is None and res.observation() is None and "past the file" in res.detail
    no_such = replace(image_targets[0], path="blobs/sha256/" + "0" * 64)
    res = aud.submit(_answer(world, aud.challenge("prov-a", [no_such], "r2"), store))
    assert res.outcome is None and "no file" in res.detail


def test_check_proof_is_pure_so_another_validator_can_review_the_evidence(
        world: World, store: EmbeddedStore, file_target: ImageTarget) -> None:
    c = _auditor(world).challenge("prov-a", [file_target], "r1")
    a = _answer(world, c, store)
    assert check_proof(c, a.blocks, a.digest) == (ProofVerdict.VALID, "ok")
    assert check_proof(c, a.blocks[:1], a.digest)[0] is ProofVerdict.WRONG_DATA


def test_cidv1_raw_leaf_files_are_challenged_too(world: World, store: EmbeddedStore) -> None:
    r = store.add([pattern_bytes("v1", 600_000)], KUBO_CIDV1)
    aud = _auditor(world)
    for i in range(4):
        c = aud.challenge("prov-a", [ImageTarget(r.cid, "", r.size)], f"r{i}")
        assert aud.submit(_answer(world, c, store)).outcome is Outcome.OK


def test_a_round_seed_gives_every_validator_the_same_range(
        world: World, file_target: ImageTarget, image_targets: list[ImageTarget]) -> None:
    targets = [file_target, *image_targets]
    cs = [_auditor(world, i).challenge("prov-a", targets, "r7", round_seed=b"beacon-7")
          for i in range(3)]
    assert len({(c.cid, c.path, c.offset, c.length) for c in cs}) == 1
    assert len({c.nonce for c in cs}) == 3 and len({c.challenge_id for c in cs}) == 3


def test_ranges_are_drawn_in_proportion_to_the_files_bytes() -> None:
    cid = Cid.from_digest(b"\1" * 32, 0x70, 0)
    targets = [ImageTarget(cid, "a", 1_000), ImageTarget(cid, "b", 9_000), ImageTarget(cid, "c", 0)]
    rng = random.Random(11)
    picks = Counter(choose_range(targets, 1024, rng)[0].path for _ in range(2000))
    assert picks["c"] == 0 and 7 < picks["b"] / picks["a"] < 11  # 9,000 vs 1,000 bytes
    _, off, n = choose_range([ImageTarget(cid, "", 100)], 1024, rng)
    assert (off, n) == (0, 100)
    with pytest.raises(ValidationError):
        choose_range([ImageTarget(cid, "", 0)], 1024, rng)


def test_malformed_wire_answers(world: World, store: EmbeddedStore,
                                file_target: ImageTarget) -> None:
    c = _auditor(world).challenge("prov-a", [file_target], "r1")
    wire = _answer(world, c, store).to_wire()
    for patch in ({"blocks": ["not base64!"]}, {"blocks": "x"}, {"digest": "ab"},
                  {"nonce": "00"}, {"cid": "not-a-cid"}, {"offset": -1}):
        with pytest.raises(ValidationError):
            ChallengeAnswer.from_wire({**wire, **patch})
    assert PossessionChallenge.from_wire(c.to_wire()) == c
