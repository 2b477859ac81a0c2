"""The validator's side of possession challenges: the proof check against the CID alone, and
the book of challenges in flight that turns answers and expiries into verdicts.

Order of the verdict: an answer that arrives after the expiry is TIMEOUT. An answer whose
signature does not verify under the provider's key is refused and leaves the challenge open
(anyone can send bytes in a provider's name, so such an answer is never attributed to it);
only if nothing valid arrives before the expiry is the verdict BAD_SIGNATURE. A signed answer
whose blocks do not prove the challenged bytes under the CID is DATA_FRAUD: the provider
signed it, so the answer is itself the evidence, and any other validator can re-check it
(``check_proof`` is pure). A challenge the CID itself shows to be wrong (a path the image
does not have, an offset past the file's end) is void: no verdict, nobody's fault but the
validator's metadata.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hcp.clock import Clock
from hcp.errors import (
    AnswerMismatchError,
    AnswerReplayedError,
    CrossProviderAnswerError,
    HcpError,
    NotFoundError,
    OracleSignatureError,
    UnknownChallengeError,
    ValidationError,
)
from hcp.images.cids import SHA2_256, Cid
from hcp.images.exporter import cat, resolve_path
from hcp.images.proofs import MAX_PROOF_BLOCKS, response_digest
from hcp.oracle.challenge import (
    ANSWER_DOMAIN,
    ChallengeAnswer,
    ImageTarget,
    PossessionChallenge,
    build_challenge,
)
from hcp.oracle.findings import Check, Observation, Outcome, possession_subject
from hcp.oracle.settings import OracleSettings
from hcp.oracle.signing import KeyRegistry, Signer, Verifier
from hcp.oracle.wire import signing_bytes, to_ms

log = logging.getLogger(__name__)

_CLOSED_KEPT = 100_000


class ProofVerdict(enum.Enum):
    VALID = "valid"
    WRONG_DATA = "wrong_data"
    VOID = "void"  # the challenge asks for bytes the CID does not have


class _MissingBlock(ValidationError):
    pass


def check_proof(challenge: PossessionChallenge, blocks: tuple[bytes, ...], digest: bytes,
                block_hashes: list[bytes] | None = None) -> tuple[ProofVerdict, str]:
    """Do ``blocks`` prove, under ``challenge.cid`` alone, the challenged range, and does
    ``digest`` bind those bytes to the challenge's nonce?

    Every block used is looked up by the hash its parent's link names, so a block found is
    authentic: the provider is at fault only for a block it did not send (deleted, or sent
    altered, which is the same: the altered one hashes to nothing the DAG links to). An
    authentic DAG that has no such path or byte is the challenge's fault (VOID)."""
    if len(blocks) > MAX_PROOF_BLOCKS:
        return ProofVerdict.WRONG_DATA, f"more than {MAX_PROOF_BLOCKS} proof blocks"
    hashes = block_hashes or [hashlib.sha256(b).digest() for b in blocks]
    by_hash = dict(zip(hashes, blocks, strict=True))

    def get(cid: Cid) -> bytes:
        block = by_hash.get(cid.digest) if cid.hash_code == SHA2_256 else None
        if block is None:
            raise _MissingBlock(f"the proof lacks block {cid}")
        return block

    try:
        file_cid = resolve_path(challenge.cid, challenge.path, get)
        # Read from authentic blocks only (cat checks every child's size against its
        # parent's), so a short read is the file's real end, never a provider's omission.
        data = b"".join(cat(file_cid, get, challenge.offset, challenge.length))
    except _MissingBlock as exc:
        return ProofVerdict.WRONG_DATA, exc.detail
    except NotFoundError:
        return ProofVerdict.VOID, "the image has no file at the challenged path"
    except HcpError as exc:  # authentic blocks that are not a file there
        return ProofVerdict.VOID, exc.detail
    if not data and challenge.length > 0:
        return ProofVerdict.VOID, "the challenged offset is past the file's end"
    if digest != response_digest(challenge.nonce, data):
        return ProofVerdict.WRONG_DATA, "the digest does not bind the bytes to the nonce"
    return ProofVerdict.VALID, "ok"


def answer_evidence(challenge: PossessionChallenge, answer: ChallengeAnswer,
                    body: dict[str, Any] | None = None) -> str:
    """SHA-256 of the signed statement: what evidence bundles and votes refer to."""
    body = answer.body(challenge) if body is None else body
    return hashlib.sha256(signing_bytes(ANSWER_DOMAIN, body) + answer.signature).hexdigest()


@dataclass(frozen=True, slots=True)
class ChallengeResult:
    challenge: PossessionChallenge
    outcome: Outcome | None  # None: the challenge was void
    checked_at: datetime
    response_ms: int | None = None
    detail: str = ""
    evidence: str | None = None
    answer: ChallengeAnswer | None = None

    @property
    def provider_id(self) -> str:
        return self.challenge.provider_id

    def observation(self) -> Observation | None:
        """This validator's vote on the round (None for a void challenge)."""
        if self.outcome is None:
            return None
        c = self.challenge
        return Observation(c.validator_id, c.provider_id, Check.POSSESSION,
                           possession_subject(c.round_id), self.outcome, self.checked_at,
                           self.response_ms, self.evidence)


@dataclass(slots=True)
class _Pending:
    challenge: PossessionChallenge
    bad_signatures: int = 0


class PossessionAuditor:
    """One validator's challenges: issue, take answers, expire. One caller at a time."""

    def __init__(self, signer: Signer, providers: KeyRegistry, settings: OracleSettings,
                 clock: Clock) -> None:
        self.signer = signer
        self.settings = settings
        self.clock = clock
        self.providers = Verifier(providers)
        self._pending: dict[str, _Pending] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()  # challenge id -> provider id

    @property
    def validator_id(self) -> str:
        return self.signer.identity

    def pending(self) -> list[PossessionChallenge]:
        return [p.challenge for p in self._pending.values()]

    def challenge(self, provider_id: str, targets: list[ImageTarget], round_id: str,
                  round_seed: bytes | None = None,
                  rng: random.Random | None = None) -> PossessionChallenge:
        """Issue a signed challenge (see ``build_challenge``) and keep it in flight."""
        c = build_challenge(self.signer, provider_id, targets, round_id, self.clock.now(),
                            self.settings, rng, round_seed)
        self._pending[c.challenge_id] = _Pending(c)
        return c

    def submit(self, answer: ChallengeAnswer) -> ChallengeResult:
        """The verdict on an answer, or a typed refusal that leaves the book as it was (a
        replayed, misaddressed or unsigned answer changes nothing)."""
        now = self.clock.now()
        p = self._pending.get(answer.challenge_id)
        if p is None:
            if answer.challenge_id in self._closed:
                raise AnswerReplayedError("this challenge is already answered or expired",
                                          challenge_id=answer.challenge_id)
            raise UnknownChallengeError("no such challenge in flight",
                                        challenge_id=answer.challenge_id)
        c = p.challenge
        if answer.provider_id != c.provider_id:
            raise CrossProviderAnswerError("the challenge was sent to another provider",
                                           challenge_id=c.challenge_id)
        if not answer.matches(c):
            raise AnswerMismatchError("the answer's CID, path, range or nonce are not the "
                                      "challenge's", challenge_id=c.challenge_id)
        hashes = answer.block_hashes()
        body = answer.body(c, hashes)
        if not self.providers.verify(c.provider_id, ANSWER_DOMAIN, body, answer.signature):
            p.bad_signatures += 1
            raise OracleSignatureError("answer signature does not verify under the provider's "
                                       "registered key", challenge_id=c.challenge_id)
        evidence = answer_evidence(c, answer, body)
        rt = to_ms(now) - to_ms(c.issued_at)
        if now > c.expires_at:
            return self._close(c, Outcome.TIMEOUT, now, rt, "answered after the expiry",
                               evidence, answer)
        verdict, detail = check_proof(c, answer.blocks, answer.digest, hashes)
        outcome = {ProofVerdict.VALID: Outcome.OK, ProofVerdict.WRONG_DATA: Outcome.DATA_FRAUD,
                   ProofVerdict.VOID: None}[verdict]
        if verdict is ProofVerdict.VOID:
            log.warning("void challenge %s for %s: %s", c.challenge_id, c.provider_id, detail)
        return self._close(c, outcome, now, rt, detail, evidence, answer)

    def expire(self) -> list[ChallengeResult]:
        """TIMEOUT (or BAD_SIGNATURE, if only unsigned answers came) for every challenge past
        its expiry without a valid answer."""
        now = self.clock.now()
        out = []
        for cid in [k for k, p in self._pending.items() if now > p.challenge.expires_at]:
            p = self._pending[cid]
            outcome = Outcome.BAD_SIGNATURE if p.bad_signatures else Outcome.TIMEOUT
            out.append(self._close(p.challenge, outcome, now, None,
                                   f"{p.bad_signatures} answers with bad signatures"
                                   if p.bad_signatures else "no answer before the expiry"))
        return out

    def _close(self, c: PossessionChallenge, outcome: Outcome | None, now: datetime,
               rt: int | None, detail: str, evidence: str | None = None,
               answer: ChallengeAnswer | None = None) -> ChallengeResult:
        del self._pending[c.challenge_id]
        self._closed[c.challenge_id] = c.provider_id
        while len(self._closed) > _CLOSED_KEPT:
            self._closed.popitem(last=False)
        return ChallengeResult(c, outcome, now, rt, detail, evidence, answer)
