"""An import or fetch in progress: the blocks it writes are protected from GC and eviction
until ``commit`` records the DAG under its root and takes a hold (pin or job lease) in one
transaction. ``refs`` of every block of the DAG move in one statement per hold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hcp.errors import BlockNotFoundError
from hcp.images import exporter
from hcp.images.cids import Cid
from hcp.images.models import ImgBlock, ImgDag, ImgDagBlock, ImgLease, ImgPin
from hcp.images.params import ImportParams


class SessionHost(Protocol):
    """What a session needs of its store (``EmbeddedStore``): its index, its files, and the
    protection of blocks being written from a concurrent GC."""

    engine: Engine
    clock: Any
    files: Any

    def _protect(self, key: str) -> None: ...

    def _unprotect(self, keys: Iterable[str]) -> None: ...

    def _write(self, key: str, block: bytes) -> bool: ...

    def _read(self, cid: Cid) -> bytes: ...

ROW_BATCH = 256


def _insert(engine: Engine, model):  # type: ignore[no-untyped-def]
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(model)


def _add_refs(conn, root: str, delta: int) -> None:  # type: ignore[no-untyped-def]
    members = select(ImgDagBlock.key).where(ImgDagBlock.root == root)
    conn.execute(update(ImgBlock).where(ImgBlock.key.in_(members)).values(refs=ImgBlock.refs + delta))


class ImportSession:
    """Blocks written by one import (or fetch), protected from GC until the session ends.

    ``commit`` records the DAG under a root (its member blocks: those the importer wrote, or
    found by walking the DAG in the store) and takes a hold on it (a pin or a job lease) in
    one transaction, then the blocks are safe without protection."""

    def __init__(self, store: SessionHost) -> None:
        self.store = store
        self._keys: dict[str, int] = {}  # key -> size, every block this session protects
        self._pending: dict[str, int] = {}
        self._closed = False

    def __enter__(self) -> ImportSession:  # noqa: PYI034
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def put(self, cid: Cid, block: bytes) -> None:
        key = cid.key
        if key not in self._keys:
            self.store._protect(key)
            self._keys[key] = len(block)
        self.store._write(key, block)
        self._pending[key] = len(block)
        if len(self._pending) >= ROW_BATCH:
            self._flush()

    def protect_existing(self, cid: Cid) -> bool:
        """Protect a block already in the store (a walk or fetch found it); False if absent."""
        key = cid.key
        if key not in self._keys:
            self.store._protect(key)
            self._keys[key] = -1
        return self.store.files.exists(key)

    def _flush(self) -> None:
        if not self._pending:
            return
        now = self.store.clock.now()
        rows = [{"key": k, "size": n, "refs": 0, "last_used": now} for k, n in self._pending.items()]
        self._pending = {}
        ins = _insert(self.store.engine, ImgBlock)
        # One statement executed for many rows: compiled once, whatever the batch's length.
        stmt = ins.on_conflict_do_update(index_elements=["key"],
                                         set_={"last_used": ins.excluded.last_used})
        with self.store.engine.begin() as conn:
            conn.execute(stmt, rows)

    def commit(self, root: Cid, *, size: int | None = None, tsize: int | None = None,
               params: ImportParams | None = None, pin: bool = False,
               pinned_by: str | None = None, job_id: str | None = None,
               members: bool | Iterable[str] = False) -> None:
        """Record ``root``'s DAG and hold it. ``members=True``: the DAG is exactly the blocks
        this session wrote (an import); a set of keys: those blocks (which this session
        protects); otherwise the DAG is walked in the store."""
        self._flush()
        store = self.store
        text = str(root)
        if members is True:
            keys = list(self._keys)
        elif members:
            keys = list(dict.fromkeys(members))
            if any(k not in self._keys for k in keys):
                raise ValueError("members must be blocks this session wrote or protected")
        else:
            keys = self._walk(root)
        now = store.clock.now()
        with store.engine.begin() as conn:
            ins = _insert(store.engine, ImgDag).values(
                root=text, size=size or 0, tsize=tsize or 0, stored_bytes=0, blocks=len(keys),
                params=params.to_dict() if params else None, created_at=now, last_used=now)
            conn.execute(ins.on_conflict_do_update(index_elements=["root"],
                                                   set_={"last_used": now}))
            member_ins = _insert(store.engine, ImgDagBlock)
            for i in range(0, len(keys), ROW_BATCH):
                conn.execute(member_ins.values([{"root": text, "key": k} for k in keys[i:i + ROW_BATCH]])
                             .on_conflict_do_nothing())
            # Joined through the membership rows: no bound-parameter limit, however large the DAG.
            present, stored = conn.execute(
                select(func.count(), func.coalesce(func.sum(ImgBlock.size), 0))
                .select_from(ImgDagBlock).join(ImgBlock, ImgBlock.key == ImgDagBlock.key)
                .where(ImgDagBlock.root == text)).one()
            if present != len(keys):
                raise BlockNotFoundError(f"DAG {root} is incomplete in this store", cid=text)
            conn.execute(update(ImgDag).where(ImgDag.root == text).values(stored_bytes=int(stored)))
            if pin:
                got = conn.execute(_insert(store.engine, ImgPin).values(
                    root=text, pinned_at=now, pinned_by=pinned_by).on_conflict_do_nothing()).rowcount
                if got:
                    _add_refs(conn, text, 1)
            if job_id is not None:
                expires = now + store.lease_ttl if store.lease_ttl else None
                got = conn.execute(_insert(store.engine, ImgLease).values(
                    job_id=job_id, root=text, acquired_at=now, expires_at=expires)
                    .on_conflict_do_nothing()).rowcount
                if got:
                    _add_refs(conn, text, 1)

    def _walk(self, root: Cid) -> list[str]:
        keys: list[str] = []

        def get(cid: Cid) -> bytes:
            if not self.protect_existing(cid):
                raise BlockNotFoundError(f"block {cid} of the DAG is not in this store", cid=str(cid))
            return self.store._read(cid)

        for cid, _block in exporter.walk(root, get):
            keys.append(cid.key)
        return keys

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
        finally:
            self.store._unprotect(self._keys)
