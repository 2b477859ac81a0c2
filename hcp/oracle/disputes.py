"""Disputes with evidence: when a renter disputes a job, the validators put what they know of
it into one bundle (``hcp.oracle.evidence``), each signs it, and the resolution references its
SHA-256.

``EvidenceCollector`` gathers, for the job's period (its creation to the dispute's opening),
the digests of the job's logs and metrics as the platform keeps them, the integrity of the
job's image in the platform's image store (every block verified), the provider's signed
heartbeats, the challenges with their verdicts and the findings. Everything is read from the
store and ordered, so every validator builds the same bytes on its own: a validator signs
only a bundle it rebuilt to the same digest (``sign_if_same``), never the coordinator's word.
The bundle is built a few ticks after the dispute opened, when every heartbeat received before
it has been kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hcp.agent import models as ag
from hcp.errors import HcpError
from hcp.images.cids import parse_cid
from hcp.images.exporter import BlockGetter
from hcp.marketplace import models as mk
from hcp.marketplace.jobs import JobStatus
from hcp.oracle import models as m
from hcp.oracle.evidence import (
    ArtifactRef,
    EvidenceBundle,
    ImageIntegrity,
    SignedBundle,
    build_bundle,
    check_image_integrity,
    sign_bundle,
)
from hcp.oracle.repository import OracleRepository
from hcp.oracle.signing import Signer

log = logging.getLogger(__name__)

_PAGE = 5000


@dataclass(frozen=True, slots=True)
class OpenDispute:
    job_id: str
    provider_id: str
    image_cid: str
    created_at: datetime
    opened_at: datetime

    @property
    def dispute_id(self) -> str:
        return f"dsp-{self.job_id}"


class EvidenceCollector:
    def __init__(self, engine: Engine, repo: OracleRepository,
                 blocks: BlockGetter | None = None) -> None:
        self.engine = engine
        self.repo = repo
        self.blocks = blocks  # the platform's image store; None: no integrity check

    def owed(self, opened_before: datetime, limit: int = 20) -> list[OpenDispute]:
        """Disputes still open, opened before ``opened_before``, without a kept bundle."""
        q = (select(mk.Dispute.job_id, mk.Job.provider, mk.Job.image_cid, mk.Job.created_at,
                    mk.Dispute.opened_at)
             .join(mk.Job, mk.Job.id == mk.Dispute.job_id)
             .outerjoin(m.OrcEvidence, m.OrcEvidence.job_id == mk.Dispute.job_id)
             .where(mk.Job.status == JobStatus.DISPUTED.value, m.OrcEvidence.job_id.is_(None),
                    mk.Dispute.opened_at < opened_before)
             .order_by(mk.Dispute.opened_at).limit(limit))
        with Session(self.engine) as s:
            return [OpenDispute(*row) for row in s.execute(q)]

    def dispute(self, job_id: str) -> OpenDispute | None:
        q = (select(mk.Dispute.job_id, mk.Job.provider, mk.Job.image_cid, mk.Job.created_at,
                    mk.Dispute.opened_at)
             .join(mk.Job, mk.Job.id == mk.Dispute.job_id).where(mk.Dispute.job_id == job_id))
        with Session(self.engine) as s:
            row = s.execute(q).first()
        return None if row is None else OpenDispute(*row)

    def parties(self, job_id: str) -> tuple[str, str] | None:
        """(renter, provider) of a job, None when there is no such job."""
        with Session(self.engine) as s:
            row = s.execute(select(mk.Job.renter, mk.Job.provider).where(mk.Job.id == job_id)).first()
        return None if row is None else (row[0], row[1])

    def build(self, d: OpenDispute) -> EvidenceBundle:
        start, end = d.created_at, d.opened_at + timedelta(milliseconds=1)
        far = (start - timedelta(days=1), end)
        return build_bundle(
            d.dispute_id, d.job_id, d.provider_id, start, end, d.opened_at,
            artifacts=[self._logs(d.job_id), self._metrics(d.job_id)], image=self._image(d),
            heartbeats=self.repo.heartbeats(d.provider_id, *far),
            challenges=self.repo.results(d.provider_id, *far),
            findings=self.repo.findings(d.provider_id, *far))

    def _image(self, d: OpenDispute) -> ImageIntegrity | None:
        if self.blocks is None:
            return None
        try:
            return check_image_integrity(parse_cid(d.image_cid), self.blocks)
        except HcpError as exc:  # not a CID this platform can read
            return ImageIntegrity(d.image_cid, False, 0, 0, exc.code)

    def _digest(self, job_id: str, table: type, cols: tuple[str, ...], kind: str) -> ArtifactRef:
        # The job's rows as the platform keeps them, in seq order, one JSON line each.
        h = hashlib.sha256()
        after = -1
        with Session(self.engine) as s:
            while True:
                q = (select(*(getattr(table, c) for c in cols))
                     .where(table.job_id == job_id, table.seq > after)  # type: ignore[attr-defined]
                     .order_by(table.seq).limit(_PAGE))  # type: ignore[attr-defined]
                rows = s.execute(q).all()
                for r in rows:
                    h.update(json.dumps([_plain(v) for v in r], separators=(",", ":"),
                                        sort_keys=True).encode() + b"\n")
                if len(rows) < _PAGE:
                    break
                after = rows[-1][0]
        return ArtifactRef(kind, f"{table.__tablename__}/{job_id}", h.hexdigest())  # type: ignore[attr-defined]

    def _logs(self, job_id: str) -> ArtifactRef:
        return self._digest(job_id, ag.LogRow, ("seq", "stream", "ts_ns", "text", "partial"), "logs")

    def _metrics(self, job_id: str) -> ArtifactRef:
        return self._digest(job_id, ag.MetricRow,
                            ("seq", "at", "cpu_pct", "mem_bytes", "mem_limit_bytes", "pids", "gpu"),
                            "metrics")

    def sign_if_same(self, job_id: str, sha256: str, signer: Signer) -> bytes | None:
        """This validator's signature over the bundle of ``job_id``, if its own rebuild of
        the bundle has digest ``sha256``; None otherwise (it signs nothing it did not check)."""
        d = self.dispute(job_id)
        if d is None:
            return None
        mine = self.build(d)
        if mine.sha256 != sha256:
            log.warning("evidence of %s: rebuilt to %s, asked to sign %s; not signed", job_id,
                        mine.sha256[:12], sha256[:12])
            return None
        return dict(sign_bundle(mine, signer).signatures)[signer.identity]


def _plain(v: object) -> object:
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def keep(repo: OracleRepository, signed: SignedBundle, k: int) -> bool:
    """Store a bundle with at least ``k`` signatures (False: too few yet, or kept already)."""
    if len(signed.signatures) < k:
        return False
    return repo.save_evidence(signed)
