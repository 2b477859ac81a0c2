"""The mining context a GPU actor keeps resident: a job, a nonce cursor, counters, a backend.

``mine_batch`` advances the cursor by one batch; a switch to inference pauses between
batches (or cancels the batch in flight, which then leaves no trace) and persists
``snapshot()`` (JSON-safe) so mining resumes exactly where it stopped, possibly in a
new process. ``health_check`` is on the switch's critical path,
so it hashes two nonces of a real block instead of running a kernel batch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hcp.errors import ContextUnavailableError, MiningError
from hcp.mining.backends import (
    GENESIS_HEADER,
    GENESIS_NONCE,
    GENESIS_TARGET,
    NONCE_SPACE,
    MiningBackend,
    SearchCancelled,
    cancel_check,
)
from hcp.mining.header import (
    DIFF1_TARGET,
    UINT32_MAX,
    BlockHeader,
    double_sha256,
    share_target,
)

logger = logging.getLogger(__name__)

EXTRANONCE_MAX = (1 << 64) - 1
_GENESIS80 = GENESIS_HEADER.serialize()


@dataclass(frozen=True)
class Share:
    """A nonce whose hash meets the share target; ``difficulty`` is the hash's own."""

    job_id: str
    nonce: int
    extranonce: int
    hash_hex: str
    difficulty: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int_field(data: Mapping[str, Any], name: str, lo: int, hi: int | None) -> int:
    value = data.get(name)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < lo
        or (hi is not None and value > hi)
    ):
        raise MiningError(
            f"mining state field {name!r} is out of range", field=name, value=repr(value)
        )
    return value


@dataclass
class MiningState:
    """Where a context stands; what a GPU actor persists across switches and restarts."""

    job_id: str
    template_hex: str
    extranonce: int
    next_nonce: int
    hashes_done: int
    shares_found: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MiningState:
        if not isinstance(data, Mapping):
            raise MiningError("mining state must be a mapping", value=type(data).__name__)
        job_id = data.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise MiningError("mining state needs a non-empty job_id", value=repr(job_id))
        template_hex = data.get("template_hex")
        BlockHeader.from_hex(template_hex)  # type: ignore[arg-type]  # raises MiningError if bad
        return cls(
            job_id=job_id,
            template_hex=str(template_hex).lower(),
            extranonce=_int_field(data, "extranonce", 0, EXTRANONCE_MAX),
            next_nonce=_int_field(data, "next_nonce", 0, UINT32_MAX),
            hashes_done=_int_field(data, "hashes_done", 0, None),
            shares_found=_int_field(data, "shares_found", 0, None),
        )


def merkle_root_for(template_root: str, extranonce: int) -> str:
    """The merkle root mined at ``extranonce``: the template's at 0, else a fresh one.

    A real pool changes the coinbase; locally, hashing the root with the extranonce gives
    the same effect (a new, deterministic 2^32 nonce space) without building transactions.
    """
    if (
        not isinstance(extranonce, int)
        or isinstance(extranonce, bool)
        or not 0 <= extranonce <= EXTRANONCE_MAX
    ):
        raise MiningError("extranonce must be in 0..2^64-1", extranonce=repr(extranonce))
    if extranonce == 0:
        return template_root
    digest = double_sha256(bytes.fromhex(template_root)[::-1] + extranonce.to_bytes(8, "little"))
    return digest[::-1].hex()


def _accepts_cancel(backend: MiningBackend) -> bool:
    """Whether ``backend.search`` takes a ``cancel`` keyword (the protocol does not need it)."""
    try:
        params = inspect.signature(backend.search).parameters
    except (TypeError, ValueError):
        return False
    return "cancel" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _share_difficulty_of(digest: bytes) -> float:
    value = int.from_bytes(digest, "little")
    return float("inf") if value == 0 else DIFF1_TARGET / value


class MiningContext:
    """Mines ``template`` batch by batch from a resumable cursor."""

    def __init__(
        self,
        backend: MiningBackend,
        template: BlockHeader,
        job_id: str,
        share_difficulty: float,
        batch_nonces: int,
    ) -> None:
        if not isinstance(template, BlockHeader):
            raise MiningError("template must be a BlockHeader", value=type(template).__name__)
        if not isinstance(job_id, str) or not job_id:
            raise MiningError("job_id must be a non-empty string", value=repr(job_id))
        if (
            not isinstance(batch_nonces, int)
            or isinstance(batch_nonces, bool)
            or not 1 <= batch_nonces <= NONCE_SPACE
        ):
            raise MiningError("batch_nonces must be in 1..2^32", batch_nonces=repr(batch_nonces))
        self._backend = backend
        self._cancellable = _accepts_cancel(backend)
        self._target = share_target(share_difficulty)
        self._share_difficulty = float(share_difficulty)
        self._batch = batch_nonces
        self._set_job(job_id, template, extranonce=0, next_nonce=0, hashes_done=0, shares_found=0)

    def _set_job(
        self,
        job_id: str,
        template: BlockHeader,
        extranonce: int,
        next_nonce: int,
        hashes_done: int,
        shares_found: int,
    ) -> None:
        self._job_id = job_id
        self._template = template
        self._next_nonce = next_nonce
        self._hashes_done = hashes_done
        self._shares_found = shares_found
        self._set_extranonce(extranonce)

    def _set_extranonce(self, extranonce: int) -> None:
        root = merkle_root_for(self._template.merkle_root, extranonce)
        self._extranonce = extranonce
        self._header = BlockHeader(
            self._template.version,
            self._template.prev_hash,
            root,
            self._template.time,
            self._template.bits,
            0,
        )
        self._header80 = self._header.serialize()

    # --- read-only views ---
    @property
    def backend(self) -> MiningBackend:
        return self._backend

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def template(self) -> BlockHeader:
        return self._template

    @property
    def current_header(self) -> BlockHeader:
        """The header being mined now (merkle root for the current extranonce, nonce 0)."""
        return self._header

    @property
    def batch_nonces(self) -> int:
        """Nonces per ``mine_batch`` (fewer only at the end of a nonce space)."""
        return self._batch

    @property
    def share_target(self) -> int:
        return self._target

    @property
    def share_difficulty(self) -> float:
        return self._share_difficulty

    @property
    def extranonce(self) -> int:
        return self._extranonce

    @property
    def next_nonce(self) -> int:
        return self._next_nonce

    @property
    def hashes_done(self) -> int:
        return self._hashes_done

    @property
    def shares_found(self) -> int:
        return self._shares_found

    # --- work ---
    def warm(self) -> None:
        self._backend.warm()

    def mine_batch(self, cancel: object = None) -> list[Share]:
        """Hash the next ``batch_nonces`` nonces (fewer at the end of the nonce space).

        ``cancel`` (a ``threading.Event`` or a callable returning bool) abandons the batch
        when it turns true before the backend finishes: then nothing changes (cursor,
        counters, extranonce) and ``[]`` is returned, so the same nonces are mined by the
        next call; compare ``hashes_done`` to tell that from a batch without shares.
        Backends whose ``search`` takes no ``cancel`` run the batch to its end.
        """
        check = cancel_check(cancel)
        start = self._next_nonce
        count = min(self._batch, NONCE_SPACE - start)  # a batch never straddles two extranonces
        if check is not None and self._cancellable:
            try:
                nonces = self._backend.search(
                    self._header80, start, count, self._target, cancel=check
                )
            except SearchCancelled:
                return []
        else:
            nonces = self._backend.search(self._header80, start, count, self._target)
        shares = [self._make_share(nonce) for nonce in nonces]
        self._hashes_done += count
        self._shares_found += len(shares)
        self._next_nonce = start + count
        if self._next_nonce >= NONCE_SPACE:
            if self._extranonce >= EXTRANONCE_MAX:
                raise MiningError(
                    "extranonce space exhausted; a new job is needed", job_id=self._job_id
                )
            logger.info(
                "job %s: nonce space exhausted, extranonce %d", self._job_id, self._extranonce + 1
            )
            self._next_nonce = 0
            self._set_extranonce(self._extranonce + 1)
        return shares

    def _make_share(self, nonce: int) -> Share:
        digest = double_sha256(self._header80[:76] + nonce.to_bytes(4, "little"))
        if int.from_bytes(digest, "little") > self._target:
            # A kernel bug must not turn into invalid shares sent upstream.
            raise ContextUnavailableError(
                "mining backend returned a nonce that does not meet the share target",
                backend=self._backend.name,
                nonce=nonce,
            )
        return Share(
            self._job_id, nonce, self._extranonce, digest[::-1].hex(), _share_difficulty_of(digest)
        )

    # --- persistence ---
    def snapshot(self) -> MiningState:
        return MiningState(
            job_id=self._job_id,
            template_hex=self._template.serialize().hex(),
            extranonce=self._extranonce,
            next_nonce=self._next_nonce,
            hashes_done=self._hashes_done,
            shares_found=self._shares_found,
        )

    def restore(self, state: MiningState | Mapping[str, Any]) -> None:
        """Resume from a snapshot (its job and template replace the current ones)."""
        if not isinstance(state, MiningState):
            state = MiningState.from_dict(state)
        else:
            state = MiningState.from_dict(state.to_dict())  # same checks for both forms
        template = BlockHeader.from_hex(state.template_hex)
        self._set_job(
            state.job_id,
            template,
            state.extranonce,
            state.next_nonce,
            state.hashes_done,
            state.shares_found,
        )

    def health_check(self) -> bool:
        """Cheap liveness + correctness probe: two genesis nonces, the real one must be the hit."""
        try:
            found = self._backend.search(_GENESIS80, GENESIS_NONCE - 1, 2, GENESIS_TARGET)
        except Exception:
            logger.exception("mining health check failed on backend %s", self._backend.name)
            return False
        if found != [GENESIS_NONCE]:
            logger.error(
                "mining health check: backend %s found %r on genesis", self._backend.name, found
            )
            return False
        return True
