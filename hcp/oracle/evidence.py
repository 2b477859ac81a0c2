"""Evidence bundles for disputes: everything the validators know about one job's period in
one canonical JSON document, named by its SHA-256 and signed by the validators.

The bundle carries the signed statements themselves (heartbeats with the provider's
signatures, challenges with the validator's, answers as digests of the provider-signed
statement), so anyone holding the registered keys can re-check it without trusting the
validators beyond their signatures on the whole. The resolution of a dispute references
the bundle by its digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hcp.errors import HcpError, InvalidEvidenceError
from hcp.images.cids import Cid
from hcp.images.exporter import BlockGetter, walk
from hcp.oracle.audit import ChallengeResult
from hcp.oracle.findings import Finding
from hcp.oracle.heartbeat import DOMAIN as HEARTBEAT_DOMAIN
from hcp.oracle.heartbeat import Heartbeat
from hcp.oracle.signing import Signer, Verifier
from hcp.oracle.wire import canonical, from_ms, signing_bytes, to_ms

DOMAIN = "evidence"
MAX_ITEMS = 20_000


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A job's logs or metrics as the platform keeps them (a CID, a store key) and their hash."""

    kind: str   # "logs", "metrics", ...
    ref: str
    sha256: str

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class ImageIntegrity:
    cid: str
    intact: bool
    blocks_checked: int
    bytes_checked: int
    detail: str = ""

    def body(self) -> dict[str, Any]:
        return {"cid": self.cid, "intact": self.intact, "blocks": self.blocks_checked,
                "bytes": self.bytes_checked, "detail": self.detail}


def check_image_integrity(cid: Cid, get: BlockGetter) -> ImageIntegrity:
    """Walk the whole DAG from ``get`` (a store's ``get_block``), every block verified."""
    blocks = size = 0
    try:
        for _cid, block in walk(cid, get):
            blocks += 1
            size += len(block)
    except HcpError as exc:
        return ImageIntegrity(str(cid), False, blocks, size, f"{exc.code}: {exc.detail}"[:500])
    return ImageIntegrity(str(cid), True, blocks, size)


def challenge_entry(result: ChallengeResult) -> dict[str, Any]:
    return {"challenge": result.challenge.to_wire(),
            "outcome": None if result.outcome is None else result.outcome.value,
            "checked_at": to_ms(result.checked_at), "response_ms": result.response_ms,
            "answer_sha256": result.evidence, "detail": result.detail[:500]}


def finding_entry(f: Finding) -> dict[str, Any]:
    return {"id": f.finding_id, "check": f.check.value, "subject": f.subject,
            "outcome": None if f.outcome is None else f.outcome.value,
            "agreeing": list(f.agreeing), "decided_at": to_ms(f.decided_at)}


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    dispute_id: str
    job_id: str
    provider_id: str
    period_start: datetime
    period_end: datetime
    artifacts: tuple[ArtifactRef, ...]
    image: ImageIntegrity | None
    heartbeats: tuple[dict[str, Any], ...]  # Heartbeat.to_wire(): signed by the provider
    challenges: tuple[dict[str, Any], ...]  # challenge_entry()
    findings: tuple[dict[str, Any], ...]    # finding_entry()
    chain_records: tuple[str, ...]          # transaction hashes / event ids on chain
    created_at: datetime

    def body(self) -> dict[str, Any]:
        return {"dispute": self.dispute_id, "job": self.job_id, "provider": self.provider_id,
                "period_start": to_ms(self.period_start), "period_end": to_ms(self.period_end),
                "artifacts": [a.body() for a in self.artifacts],
                "image": None if self.image is None else self.image.body(),
                "heartbeats": list(self.heartbeats), "challenges": list(self.challenges),
                "findings": list(self.findings), "chain_records": list(self.chain_records),
                "created_at": to_ms(self.created_at)}

    def canonical(self) -> bytes:
        return canonical(self.body())

    @classmethod
    def from_body(cls, b: dict[str, Any]) -> EvidenceBundle:
        """The bundle a stored ``body()`` describes (its digest is recomputed, never read)."""
        try:
            img = b["image"]
            return cls(str(b["dispute"]), str(b["job"]), str(b["provider"]),
                       from_ms(int(b["period_start"])), from_ms(int(b["period_end"])),
                       tuple(ArtifactRef(str(a["kind"]), str(a["ref"]), str(a["sha256"]))
                             for a in b["artifacts"]),
                       None if img is None else ImageIntegrity(
                           str(img["cid"]), bool(img["intact"]), int(img["blocks"]),
                           int(img["bytes"]), str(img["detail"])),
                       tuple(b["heartbeats"]), tuple(b["challenges"]), tuple(b["findings"]),
                       tuple(str(x) for x in b["chain_records"]), from_ms(int(b["created_at"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvidenceError(f"not an evidence bundle: {type(exc).__name__}") from None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


def build_bundle(dispute_id: str, job_id: str, provider_id: str, period_start: datetime,
                 period_end: datetime, created_at: datetime, *,
                 artifacts: Sequence[ArtifactRef] = (), image: ImageIntegrity | None = None,
                 heartbeats: Iterable[Heartbeat] = (), challenges: Iterable[ChallengeResult] = (),
                 findings: Iterable[Finding] = (), chain_records: Sequence[str] = ()) -> EvidenceBundle:
    """The period's evidence about ``provider_id``, in a fixed order (so every validator that
    holds the same records builds the same bytes and can co-sign them)."""
    hbs = sorted((h for h in heartbeats if h.provider_id == provider_id
                  and period_start <= h.sent_at < period_end), key=lambda h: h.seq)
    chs = sorted((r for r in challenges if r.provider_id == provider_id
                  and period_start <= r.challenge.issued_at < period_end),
                 key=lambda r: (r.challenge.issued_at, r.challenge.challenge_id))
    fds = sorted((f for f in findings if f.provider_id == provider_id
                  and period_start <= f.decided_at < period_end),
                 key=lambda f: (f.decided_at, f.finding_id))
    if max(len(hbs), len(chs), len(fds)) > MAX_ITEMS:
        raise InvalidEvidenceError(f"a bundle holds at most {MAX_ITEMS} items of each kind")
    return EvidenceBundle(dispute_id, job_id, provider_id, period_start, period_end,
                          tuple(artifacts), image, tuple(h.to_wire() for h in hbs),
                          tuple(challenge_entry(r) for r in chs),
                          tuple(finding_entry(f) for f in fds), tuple(chain_records), created_at)


@dataclass(frozen=True, slots=True)
class SignedBundle:
    bundle: EvidenceBundle
    signatures: tuple[tuple[str, bytes], ...]  # (validator id, signature), by validator id

    def with_signature(self, validator_id: str, signature: bytes) -> SignedBundle:
        sigs = dict(self.signatures)
        sigs[validator_id] = signature
        return SignedBundle(self.bundle, tuple(sorted(sigs.items())))


def _statement(bundle: EvidenceBundle, digest: str | None = None) -> dict[str, Any]:
    return {"dispute": bundle.dispute_id, "sha256": digest or bundle.sha256}


def sign_bundle(bundle: EvidenceBundle | SignedBundle, signer: Signer) -> SignedBundle:
    """Add ``signer``'s signature over the bundle's digest."""
    signed = bundle if isinstance(bundle, SignedBundle) else SignedBundle(bundle, ())
    return signed.with_signature(signer.identity, signer.sign(DOMAIN, _statement(signed.bundle)))


def verify_bundle(signed: SignedBundle, validators: Verifier, k: int,
                  providers: Verifier | None = None) -> str:
    """The bundle's SHA-256 if at least ``k`` distinct validators of the set signed it (and,
    with ``providers``, every heartbeat in it carries its provider's valid signature)."""
    b = signed.bundle
    digest = b.sha256
    statement = _statement(b, digest)
    good = {vid for vid, sig in signed.signatures
            if validators.verify(vid, DOMAIN, statement, sig)}
    if len(good) < k:
        raise InvalidEvidenceError(f"the bundle has {len(good)} valid validator signatures, "
                                   f"{k} needed", valid=len(good), needed=k)
    if providers is not None:
        for hb in b.heartbeats:
            h = Heartbeat.from_wire(hb)
            if h.provider_id != b.provider_id or not providers.verify(
                    h.provider_id, HEARTBEAT_DOMAIN, h.body(), h.signature):
                raise InvalidEvidenceError("a heartbeat in the bundle is not the provider's",
                                           seq=h.seq)
    return digest


def bundle_signing_bytes(bundle: EvidenceBundle) -> bytes:
    """The exact bytes a validator signs for ``bundle`` (for signers outside Python)."""
    return signing_bytes(DOMAIN, _statement(bundle))
