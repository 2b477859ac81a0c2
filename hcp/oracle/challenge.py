"""Possession challenges: the messages, how a validator picks one, how an agent answers.

A challenge names a root the provider must hold (a pinned or running image), a file inside
it (an image's layer blob, or the root itself), a random offset, a length (1024 bytes), a
nonce and a 30 s expiry, and is signed by the validator that sent it. The answer is the proof
blocks from the root down to the touched leaves (``hcp.images.proofs``), the digest
``sha256(nonce || bytes)``, and the provider's signature over the challenge and the answer.
The validator needs only the CID to check it (``hcp.oracle.audit``).
"""

from __future__ import annotations

import bisect
import hashlib
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hcp.errors import (
    CrossProviderAnswerError,
    HcpError,
    OracleSignatureError,
    StaleMessageError,
    ValidationError,
)
from hcp.images.cids import Cid, parse_cid
from hcp.images.exporter import BlockGetter, cat, resolve_path
from hcp.images.proofs import MAX_PROOF_BLOCKS, response_digest
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import Signer, Verifier
from hcp.oracle.wire import Fields, to_ms, truncate_ms

CHALLENGE_DOMAIN = "challenge"
ANSWER_DOMAIN = "answer"
NONCE_BYTES = 32
MAX_PATH = 512
MAX_BLOCK_WIRE = 2 << 20


@dataclass(frozen=True, slots=True)
class ImageTarget:
    """A file a provider must hold: ``path`` inside the pinned root ``cid`` ("" when the root
    is the file), ``size`` its bytes as the image's metadata records them."""

    cid: Cid
    path: str = ""
    size: int = 0


def targets_for_image(cid: str, layers: Sequence[dict[str, Any]]) -> list[ImageTarget]:
    """The layer blobs of a Docker image stored by hcp (an OCI layout under ``cid``), from the
    catalogue's ``layers`` (``ImageInfo.layers``: digest and size of each)."""
    root = parse_cid(cid)
    return [ImageTarget(root, f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}",
                        int(layer["size"])) for layer in layers if int(layer["size"]) > 0]


@dataclass(frozen=True, slots=True)
class PossessionChallenge:
    challenge_id: str
    validator_id: str
    provider_id: str
    round_id: str
    cid: Cid
    path: str
    offset: int
    length: int
    nonce: bytes
    issued_at: datetime
    expires_at: datetime
    signature: bytes = b""  # the validator's

    def body(self) -> dict[str, Any]:
        return {"id": self.challenge_id, "validator": self.validator_id,
                "provider": self.provider_id, "round": self.round_id, "cid": str(self.cid),
                "path": self.path, "offset": self.offset, "length": self.length,
                "nonce": self.nonce.hex(), "issued_at": to_ms(self.issued_at),
                "expires_at": to_ms(self.expires_at)}

    def to_wire(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature.hex()}

    @classmethod
    def from_wire(cls, obj: Any) -> PossessionChallenge:
        f = Fields(obj, "challenge")
        return cls(f.text("id", 64), f.text("validator"), f.text("provider"), f.text("round"),
                   parse_cid(f.text("cid")), f.text("path", MAX_PATH, 0), f.integer("offset"),
                   f.integer("length", 0, 1 << 20), f.hexbytes("nonce", NONCE_BYTES),
                   f.time("issued_at"), f.time("expires_at"), f.hexbytes("signature", 64))


@dataclass(frozen=True, slots=True)
class ChallengeAnswer:
    challenge_id: str
    provider_id: str
    cid: Cid            # echoed from the challenge
    path: str
    offset: int
    length: int
    nonce: bytes
    blocks: tuple[bytes, ...]  # root first; fewer (or none) when the provider lacks some
    digest: bytes              # sha256(nonce || bytes); empty when the bytes could not be read
    answered_at: datetime
    signature: bytes = b""     # the provider's, over the challenge and this answer

    def block_hashes(self) -> list[bytes]:
        return [hashlib.sha256(b).digest() for b in self.blocks]

    def body(self, challenge: PossessionChallenge,
             block_hashes: list[bytes] | None = None) -> dict[str, Any]:
        hashes = self.block_hashes() if block_hashes is None else block_hashes
        return {"challenge": challenge.body(), "provider": self.provider_id,
                "digest": self.digest.hex(), "blocks": [h.hex() for h in hashes],
                "answered_at": to_ms(self.answered_at)}

    def matches(self, challenge: PossessionChallenge) -> bool:
        return (self.cid, self.path, self.offset, self.length, self.nonce) == (
            challenge.cid, challenge.path, challenge.offset, challenge.length, challenge.nonce)

    def to_wire(self) -> dict[str, Any]:
        import base64

        return {"challenge_id": self.challenge_id, "provider": self.provider_id,
                "cid": str(self.cid), "path": self.path, "offset": self.offset,
                "length": self.length, "nonce": self.nonce.hex(),
                "blocks": [base64.b64encode(b).decode() for b in self.blocks],
                "digest": self.digest.hex(), "answered_at": to_ms(self.answered_at),
                "signature": self.signature.hex()}

    @classmethod
    def from_wire(cls, obj: Any) -> ChallengeAnswer:
        import base64
        import binascii

        f = Fields(obj, "answer")
        blocks = []
        for b in f.items("blocks", MAX_PROOF_BLOCKS):
            if not isinstance(b, str) or len(b) > MAX_BLOCK_WIRE * 4 // 3 + 4:
                raise ValidationError("answer.blocks must be base64 strings of blocks ≤ 2 MiB",
                                      field="blocks")
            try:
                blocks.append(base64.b64decode(b, validate=True))
            except binascii.Error:
                raise ValidationError("answer.blocks must be base64", field="blocks") from None
        digest = f.hexbytes("digest", None, 32)
        if len(digest) not in (0, 32):
            raise ValidationError("answer.digest is 32 bytes or empty", field="digest")
        return cls(f.text("challenge_id", 64), f.text("provider"), parse_cid(f.text("cid")),
                   f.text("path", MAX_PATH, 0), f.integer("offset"),
                   f.integer("length", 0, 1 << 20), f.hexbytes("nonce", NONCE_BYTES),
                   tuple(blocks), digest, f.time("answered_at"), f.hexbytes("signature", 64))


def choose_range(targets: Sequence[ImageTarget], length: int,
                 rng: random.Random) -> tuple[ImageTarget, int, int]:
    """A byte drawn uniformly over all the targets' bytes (so a large layer is checked as
    often as its share of the image), and the ``length``-byte range of its file around it."""
    sized = [t for t in targets if t.size > 0]
    if not sized:
        raise ValidationError("the provider holds no non-empty image to challenge")
    ends, total = [], 0
    for t in sized:
        total += t.size
        ends.append(total)
    pos = rng.randrange(total)
    i = bisect.bisect_right(ends, pos)
    target = sized[i]
    n = min(length, target.size)
    offset = rng.randrange(target.size - n + 1)
    return target, offset, n


def build_challenge(signer: Signer, provider_id: str, targets: Sequence[ImageTarget],
                    round_id: str, now: datetime, settings: OracleSettings,
                    rng: random.Random | None = None,
                    round_seed: bytes | None = None) -> PossessionChallenge:
    """A signed challenge. With ``round_seed`` (shared by the validators of one round) every
    validator asks the provider for the same range, so their verdicts are about the same
    bytes; the nonce is always this validator's own."""
    if round_seed is not None:
        seed = hashlib.sha256(round_seed + b"\n" + provider_id.encode()).digest()
        rng = random.Random(seed)
    target, offset, n = choose_range(targets, settings.challenge_bytes,
                                     rng or random.SystemRandom())
    issued = truncate_ms(now)
    c = PossessionChallenge(secrets.token_hex(16), signer.identity, provider_id, round_id,
                            target.cid, target.path, offset, n, secrets.token_bytes(NONCE_BYTES),
                            issued, issued + timedelta(seconds=settings.challenge_expiry_seconds))
    return _with_signature(c, signer.sign(CHALLENGE_DOMAIN, c.body()))


def _with_signature(c: PossessionChallenge, sig: bytes) -> PossessionChallenge:
    return PossessionChallenge(c.challenge_id, c.validator_id, c.provider_id, c.round_id, c.cid,
                               c.path, c.offset, c.length, c.nonce, c.issued_at, c.expires_at, sig)


def collect_proof(challenge: PossessionChallenge, get: BlockGetter) -> tuple[tuple[bytes, ...], bytes]:
    """The blocks on the path root -> file -> range, and the digest of the range's bytes.
    A block the store lacks (or holds corrupted) ends the walk: the blocks gathered so far
    and an empty digest are returned, which the validator finds to be a failed proof."""
    seen: dict[bytes, bytes] = {}

    def recording(cid: Cid) -> bytes:
        block = get(cid)
        seen.setdefault(hashlib.sha256(block).digest(), block)
        return block

    try:
        file_cid = resolve_path(challenge.cid, challenge.path, recording)
        data = b"".join(cat(file_cid, recording, challenge.offset, challenge.length))
    except HcpError:  # missing, corrupted or undecodable: what it has is the answer
        return tuple(seen.values())[:MAX_PROOF_BLOCKS], b""
    return tuple(seen.values()), response_digest(challenge.nonce, data)


def answer_challenge(challenge: PossessionChallenge, get: BlockGetter, signer: Signer,
                     now: datetime, validators: Verifier | None = None) -> ChallengeAnswer:
    """The provider agent's answer, from its block store (``store.get_block``). With
    ``validators`` the challenge itself is checked first (sent by a validator of the set, to
    this provider, not expired), so a forged challenge gets no work and no signature."""
    if challenge.provider_id != signer.identity:
        raise CrossProviderAnswerError("this challenge is for another provider",
                                       provider=challenge.provider_id)
    if validators is not None:
        if not validators.verify(challenge.validator_id, CHALLENGE_DOMAIN, challenge.body(),
                                 challenge.signature):
            raise OracleSignatureError("challenge not signed by a validator of the set",
                                       validator=challenge.validator_id)
        if now > challenge.expires_at:
            raise StaleMessageError("challenge expired", challenge_id=challenge.challenge_id)
    blocks, digest = collect_proof(challenge, get)
    a = ChallengeAnswer(challenge.challenge_id, signer.identity, challenge.cid, challenge.path,
                        challenge.offset, challenge.length, challenge.nonce, blocks, digest,
                        truncate_ms(now))
    return sign_answer(a, challenge, signer)


def sign_answer(a: ChallengeAnswer, challenge: PossessionChallenge, signer: Signer) -> ChallengeAnswer:
    return ChallengeAnswer(a.challenge_id, a.provider_id, a.cid, a.path, a.offset, a.length,
                           a.nonce, a.blocks, a.digest, a.answered_at,
                           signer.sign(ANSWER_DOMAIN, a.body(challenge)))
