"""Merkle proofs of possession: the blocks on the paths from a root to the leaves that hold a
byte range, and their check against the root CID alone.

An oracle's challenge is (CID, offset, 1024 bytes, nonce). The provider answers with the
proof blocks; the verifier hashes each one against the link that names it, starting from the
root CID, so nothing but the CID has to be trusted. The nonce makes an answer fresh: the
response digest ``sha256(nonce || range bytes)`` is what a signed heartbeat carries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hcp.errors import ValidationError
from hcp.images.cids import Cid
from hcp.images.exporter import BlockGetter, cat

CHALLENGE_BYTES = 1024
MAX_PROOF_BLOCKS = 64


@dataclass(frozen=True)
class Challenge:
    cid: Cid
    offset: int
    length: int = CHALLENGE_BYTES
    nonce: bytes = b""


@dataclass(frozen=True)
class RangeProof:
    root: Cid
    offset: int
    length: int
    blocks: tuple[bytes, ...]  # root first, then depth first along the range

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.blocks)


def prove_range(root: Cid, offset: int, length: int, get: BlockGetter) -> RangeProof:
    blocks: list[bytes] = []
    for _ in cat(root, get, offset, length, visit=lambda _c, b: blocks.append(b)):
        pass
    return RangeProof(root, offset, length, tuple(blocks))


def verify_range(root: Cid, offset: int, length: int, blocks: tuple[bytes, ...] | list[bytes]) -> bytes:
    """The range's bytes if ``blocks`` prove them under ``root``; a typed error otherwise
    (``TamperedBlockError``/``InvalidBlockError`` for a bad block, ``ValidationError`` for a
    missing one)."""
    if len(blocks) > MAX_PROOF_BLOCKS:
        raise ValidationError(f"a proof has at most {MAX_PROOF_BLOCKS} blocks")
    by_hash = {hashlib.sha256(b).digest(): b for b in blocks}

    def get(cid: Cid) -> bytes:
        try:
            return by_hash[cid.digest]
        except KeyError:
            raise ValidationError(f"the proof lacks block {cid}", cid=str(cid)) from None

    return b"".join(cat(root, get, offset, length))


def response_digest(nonce: bytes, data: bytes) -> bytes:
    return hashlib.sha256(nonce + data).digest()


def answer(challenge: Challenge, get: BlockGetter) -> tuple[RangeProof, bytes]:
    proof = prove_range(challenge.cid, challenge.offset, challenge.length, get)
    data = verify_range(proof.root, proof.offset, proof.length, proof.blocks)
    return proof, response_digest(challenge.nonce, data)


def check_answer(challenge: Challenge, proof: RangeProof, digest: bytes) -> bool:
    """True only for a proof of this challenge's range whose digest binds its nonce."""
    if (proof.root, proof.offset, proof.length) != (challenge.cid, challenge.offset, challenge.length):
        return False
    data = verify_range(challenge.cid, challenge.offset, challenge.length, proof.blocks)
    return response_digest(challenge.nonce, data) == digest
