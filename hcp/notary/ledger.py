"""The notary's ledger: miner keys, tasks, claims and every stake movement (SQL).

Every claim and its money effect (reward, slash, warning) commit in one transaction, and the
claims' UNIQUE nonce and the first-finder table make replays and double rewards impossible even
when two requests race, so a crash or a retry can neither lose nor double-count anything.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from hcp.errors import (
    ConflictError,
    NotFoundError,
    ReplayDetectedError,
    StoreError,
    ValidationError,
)
from hcp.notary.economics import Penalty
from hcp.notary.models import Claim, FirstFinder, MinerKey, NotaryTask, StakeEntry
from hcp.notary.records import (
    ClaimDraft,
    ClaimRecord,
    MinerRecord,
    TaskRecord,
    claim_record,
    miner_record,
    task_record,
)

log = logging.getLogger(__name__)

__all__ = ["ClaimDraft", "ClaimRecord", "MinerRecord", "NotaryLedger", "TaskRecord"]


class NotaryLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- miners -------------------------------------------------------------------------
    def register_miner(self, miner_id: str, public_key_hex: str, stake: int,
                       now: datetime) -> MinerRecord:
        try:
            miner_id = str(uuid.UUID(miner_id))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValidationError("miner_id must be a UUID", field="miner_id") from exc
        try:
            key = bytes.fromhex(public_key_hex)
        except (ValueError, TypeError) as exc:
            raise ValidationError("public_key must be hex", field="public_key") from exc
        if len(key) != 32:
            raise ValidationError("public_key must be 32 bytes (64 hex)", field="public_key")
        if isinstance(stake, bool) or not isinstance(stake, int) or stake < 0:
            raise ValidationError("stake must be a non-negative integer", field="stake")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(MinerKey).values(
                    id=miner_id, public_key=key.hex(), stake=stake, balance=0, slashed_total=0,
                    warnings=0, slashes=0, status="active", created_at=now, revoked_at=None))
                conn.execute(insert(StakeEntry).values(miner_id=miner_id, kind="stake",
                                                       amount=stake, submission_id=None, at=now))
        except IntegrityError as exc:
            raise ConflictError(f"miner {miner_id} is already registered",
                                miner_id=miner_id) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot register miner: {exc}") from exc
        return self.miner(miner_id)

    def miner(self, miner_id: str) -> MinerRecord:
        with self._read() as conn:
            row = conn.execute(select(MinerKey.__table__).where(MinerKey.id == miner_id)).first()
        if row is None:
            raise NotFoundError(f"no miner {miner_id}", miner_id=miner_id)
        return miner_record(row)  # type: ignore[arg-type]

    def list_miners(self) -> list[MinerRecord]:
        with self._read() as conn:
            rows = conn.execute(select(MinerKey.__table__).order_by(MinerKey.created_at)).all()
        return [miner_record(r) for r in rows]  # type: ignore[arg-type]

    def revoke_miner(self, miner_id: str, now: datetime) -> MinerRecord:
        self.miner(miner_id)
        with self._write() as conn:
            conn.execute(update(MinerKey).where(MinerKey.id == miner_id, MinerKey.status == "active")
                         .values(status="revoked", revoked_at=now))
        return self.miner(miner_id)

    def active_public_key(self, miner_id: str) -> bytes | None:
        with self._read() as conn:
            row = conn.execute(select(MinerKey.public_key).where(
                MinerKey.id == miner_id, MinerKey.status == "active")).first()
        return bytes.fromhex(row[0]) if row else None

    # --- tasks --------------------------------------------------------------------------
    def create_task(self, task: TaskRecord) -> TaskRecord:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(NotaryTask).values(
                    id=task.task_id, metric=task.metric,
                    performance_threshold=task.performance_threshold,
                    dataset_hash=task.dataset_hash,
                    max_training_time_seconds=task.max_training_time_seconds,
                    reward=task.reward, created_at=task.created_at, expires_at=task.expires_at,
                    status="active"))
        except IntegrityError as exc:
            raise ConflictError(f"task {task.task_id} exists", task_id=task.task_id) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot create task: {exc}") from exc
        return self.task(task.task_id)

    def task(self, task_id: str) -> TaskRecord:
        with self._read() as conn:
            row = conn.execute(select(NotaryTask.__table__).where(NotaryTask.id == task_id)).first()
        if row is None:
            raise NotFoundError(f"no task {task_id}", task_id=task_id)
        return task_record(row)

    def list_tasks(self) -> list[TaskRecord]:
        with self._read() as conn:
            rows = conn.execute(select(NotaryTask.__table__).order_by(NotaryTask.created_at)).all()
        return [task_record(r) for r in rows]

    def close_task(self, task_id: str) -> TaskRecord:
        self.task(task_id)
        with self._write() as conn:
            conn.execute(update(NotaryTask).where(NotaryTask.id == task_id).values(status="closed"))
        return self.task(task_id)

    def active_task(self, now: datetime) -> TaskRecord | None:
        with self._read() as conn:
            row = conn.execute(
                select(NotaryTask.__table__)
                .where(NotaryTask.status == "active", NotaryTask.expires_at > now)
                .order_by(NotaryTask.created_at.desc(), NotaryTask.id.desc()).limit(1)).first()
        return task_record(row) if row else None

    # --- claims -------------------------------------------------------------------------
    def nonce_used(self, nonce: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(Claim.nonce).where(Claim.nonce == nonce)).first() is not None

    def claim(self, submission_id: str) -> ClaimRecord:
        with self._read() as conn:
            row = conn.execute(select(Claim.__table__).where(
                Claim.submission_id == submission_id)).first()
        if row is None:
            raise NotFoundError(f"no claim {submission_id}", submission_id=submission_id)
        return claim_record(row)

    def list_claims(self, miner_id: str | None = None, limit: int = 100) -> list[ClaimRecord]:
        stmt = select(Claim.__table__).order_by(Claim.received_at.desc()).limit(limit)
        if miner_id:
            stmt = stmt.where(Claim.miner_id == miner_id)
        with self._read() as conn:
            return [claim_record(r) for r in conn.execute(stmt).all()]

    def record_verified(self, draft: ClaimDraft, reward: int) -> ClaimRecord:
        """Record a verified claim; only the first verified claim of an artifact is rewarded."""
        def work(conn: Connection) -> None:
            _lock_miner(conn, draft.miner_id)
            duplicate_of: str | None = None
            try:
                with conn.begin_nested():
                    conn.execute(insert(FirstFinder).values(artifact_hash=draft.artifact_hash,
                                                            submission_id=draft.submission_id))
            except IntegrityError:
                duplicate_of = conn.execute(select(FirstFinder.submission_id).where(
                    FirstFinder.artifact_hash == draft.artifact_hash)).scalar_one()
            paid = 0 if duplicate_of else reward
            _insert_claim(conn, draft, "verified", duplicate_of=duplicate_of, reward=paid)
            if paid:
                conn.execute(update(MinerKey).where(MinerKey.id == draft.miner_id)
                             .values(balance=MinerKey.balance + paid))
                conn.execute(insert(StakeEntry).values(miner_id=draft.miner_id, kind="reward",
                                                       amount=paid,
                                                       submission_id=draft.submission_id,
                                                       at=draft.received_at))

        self._claim_tx(draft, work)
        return self.claim(draft.submission_id)

    def record_rejected(self, draft: ClaimDraft, penalize: Any) -> ClaimRecord:
        """Record a failed claim and its penalty; ``penalize(warnings, slashes, stake)`` -> Penalty."""
        def work(conn: Connection) -> None:
            _lock_miner(conn, draft.miner_id)
            m = conn.execute(select(MinerKey.warnings, MinerKey.slashes, MinerKey.stake)
                             .where(MinerKey.id == draft.miner_id)).one()
            p: Penalty = penalize(m.warnings, m.slashes, m.stake)
            slash = min(p.slash, m.stake)
            _insert_claim(conn, draft, "rejected", slashed=slash, warning=p.warning)
            values: dict[str, Any] = {}
            if p.warning:
                values["warnings"] = MinerKey.warnings + 1
            if slash > 0:
                values.update(stake=MinerKey.stake - slash, slashes=MinerKey.slashes + 1,
                              slashed_total=MinerKey.slashed_total + slash)
            if values:
                conn.execute(update(MinerKey).where(MinerKey.id == draft.miner_id).values(**values))
            if p.warning or slash:
                conn.execute(insert(StakeEntry).values(
                    miner_id=draft.miner_id, kind="warning" if p.warning else "slash",
                    amount=-slash, submission_id=draft.submission_id, at=draft.received_at))

        self._claim_tx(draft, work)
        return self.claim(draft.submission_id)

    # --- plumbing -----------------------------------------------------------------------
    def _claim_tx(self, draft: ClaimDraft, work: Any) -> None:
        try:
            with self.engine.begin() as conn:
                work(conn)
        except IntegrityError as exc:
            if self.nonce_used(draft.nonce):
                raise ReplayDetectedError("nonce already used", nonce=draft.nonce) from exc
            raise StoreError(f"cannot record claim: {exc.orig}") from exc
        except OperationalError as exc:
            raise StoreError(f"ledger unavailable: {exc.orig}") from exc

    def _read(self) -> Any:
        return _Guard(self.engine, write=False)

    def _write(self) -> Any:
        return _Guard(self.engine, write=True)


def _lock_miner(conn: Connection, miner_id: str) -> None:
    # A no-op write as the first statement: a row lock on PostgreSQL, and on SQLite it takes
    # the write lock up front, so the read-then-write below cannot fail with a stale snapshot.
    conn.execute(update(MinerKey).where(MinerKey.id == miner_id).values(stake=MinerKey.stake))


def _insert_claim(conn: Connection, d: ClaimDraft, status: str, duplicate_of: str | None = None,
                  reward: int = 0, slashed: int = 0, warning: bool = False) -> None:
    conn.execute(insert(Claim).values(
        submission_id=d.submission_id, miner_id=d.miner_id, task_id=d.task_id, status=status,
        claimed_score=d.claimed_score, verified_score=d.verified_score, outcome=d.outcome,
        details=d.details, artifact_hash=d.artifact_hash, artifact_uri=d.artifact_uri,
        signature=d.signature, payload_timestamp=d.payload_timestamp, nonce=d.nonce,
        received_at=d.received_at, verification_seconds=d.verification_seconds,
        duplicate_of=duplicate_of, reward=reward, slashed=slashed, warning=int(warning)))


class _Guard:
    """A connection context that turns driver failures into StoreError (503)."""

    def __init__(self, engine: Engine, write: bool) -> None:
        self._cm = engine.begin() if write else engine.connect()

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except SQLAlchemyError as exc:
            raise StoreError(f"ledger unavailable: {exc}") from exc

    def __exit__(self, *exc: object) -> Any:
        try:
            return self._cm.__exit__(*exc)
        except SQLAlchemyError as e:
            raise StoreError(f"ledger unavailable: {e}") from e
