"""hcp's own block store: blocks as files under HCP_HOME, indexed in SQL.

Concurrency without a repository lock (Kubo's GC locks the whole repository and blocks adds):
- every block key maps to one of ``_STRIPES`` locks; a put, a protect and a delete of one key
  serialize on its stripe only, so a sweep delays an add by at most one small batch;
- blocks an import is still writing are *protected* in memory until the import has recorded
  its DAG and taken its hold (pin or lease), so GC never sees them as garbage;
- a block row is deleted only by ``DELETE ... WHERE refs = 0`` under its stripe, after checking
  it is not protected; a pin or lease raises ``refs`` of every block of its DAG in one statement.

The cap is hard: space is reserved before a block is written; when it would be exceeded,
unprotected blocks with ``refs = 0`` are evicted least recently used first, and if that is not
enough the put fails with ``StorageFullError`` (507).

One store folder belongs to one process (the node's store actor): the stripes and the
protected set are in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from hcp.clock import Clock, SystemClock
from hcp.errors import BlockNotFoundError, StorageFullError, ValidationError
from hcp.images import exporter
from hcp.images.cids import DAG_PB, RAW, Cid, make_cid, verify_block
from hcp.images.directory import Entry, make_tree
from hcp.images.importer import FileImporter
from hcp.images.models import ImgBlock, ImgDag, ImgLease, ImgPin
from hcp.images.params import BLOCK_SIZE_LIMIT, ImportParams
from hcp.images.store.base import AddResult, GcReport, PinInfo, RepoStat, Source
from hcp.images.store.disk import BlockFiles
from hcp.images.store.session import ImportSession, _add_refs, _insert
from hcp.observability.sink import MetricsSink, NullSink

if TYPE_CHECKING:
    from hcp.config import Settings

log = logging.getLogger(__name__)

_STRIPES = 4096
_ROW_BATCH = 256
_GC_BATCH = 128
_TOUCH_FLUSH = 512


class EmbeddedStore:
    def __init__(self, root: Path, engine: Engine, cap_bytes: int, clock: Clock | None = None,
                 lease_ttl_seconds: int | None = None) -> None:
        self.files = BlockFiles(Path(root) / "blocks")
        self.engine = engine
        self.cap_bytes = cap_bytes
        self.clock = clock or SystemClock()
        self.lease_ttl = timedelta(seconds=lease_ttl_seconds) if lease_ttl_seconds else None
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._protected: dict[str, int] = {}
        self._space = threading.Lock()
        self._touch_lock = threading.Lock()
        self._touched: dict[str, datetime] = {}
        # Where this process records its collections (the API replica's and the image-cache
        # actor's sinks, set by them); none elsewhere.
        self.sink: MetricsSink = NullSink()
        with engine.connect() as conn:
            self._used = int(conn.scalar(select(func.coalesce(func.sum(ImgBlock.size), 0))) or 0)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None,
                      clock: Clock | None = None) -> EmbeddedStore:
        from hcp.store.db import engine_for, migrate

        if engine is None:
            engine = engine_for(settings.resolved_database_url)  # the process's one engine
            migrate(engine)
        s = settings.images
        store = cls(settings.home / "images" / s.store_name, engine, s.cap_bytes, clock,
                    s.lease_ttl_seconds)
        store.reconcile()
        return store

    # -- locks and protection ----------------------------------------------------------------

    def _stripe(self, key: str) -> threading.Lock:
        return self._stripes[int(key[-6:], 16) % _STRIPES]

    def _protect(self, key: str) -> None:
        # Under the stripe: a GC batch either finished with this key before, or sees it now.
        with self._stripe(key):
            self._protected[key] = self._protected.get(key, 0) + 1

    def _unprotect(self, keys: Iterable[str]) -> None:
        for key in keys:
            with self._stripe(key):
                n = self._protected.get(key, 0) - 1
                if n > 0:
                    self._protected[key] = n
                else:
                    self._protected.pop(key, None)

    # -- space -------------------------------------------------------------------------------

    def _reserve(self, n: int) -> None:
        for attempt in range(3):
            with self._space:
                if self._used + n <= self.cap_bytes:
                    self._used += n
                    return
                need = self._used + n - self.cap_bytes
            if attempt < 2:
                self._evict(need)
        raise StorageFullError(
            f"the block store is full: {n} more bytes would pass its cap of {self.cap_bytes} "
            "bytes even with every unpinned, unleased block evicted",
            cap_bytes=self.cap_bytes, needed_bytes=n)

    def _release_space(self, n: int) -> None:
        with self._space:
            self._used -= n

    def _evict(self, need: int) -> int:
        """Free at least ``need`` bytes of unheld blocks, least recently used first."""
        self._flush_touches()
        freed = 0
        while freed < need:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(ImgBlock.key, ImgBlock.size).where(ImgBlock.refs == 0)
                    .order_by(ImgBlock.last_used, ImgBlock.key).limit(_GC_BATCH * 4)).all()
            batch: list[str] = []
            planned = 0
            for key, size in rows:
                if key in self._protected:
                    continue
                batch.append(key)
                planned += int(size)
                if freed + planned >= need:
                    break  # only as many of the least recently used as the space needs
            if not batch:
                break
            got = sum(self._collect(batch).values())
            if not got:
                break
            freed += got
        if freed:
            log.info("evicted %d bytes of unpinned blocks to stay under the cap", freed)
            self._collected(freed)
        return freed

    def _collected(self, freed: int) -> None:
        """One collection (an eviction under the cap counts, as Kubo's automatic GC does)."""
        self.sink.inc("hcp_image_store_gc_runs_total", backend="embedded")
        if freed:
            self.sink.inc("hcp_image_store_gc_freed_bytes_total", freed, backend="embedded")

    def _collect(self, keys: list[str]) -> dict[str, int]:
        """Delete these blocks if they are still unheld and unprotected: {key: bytes freed}."""
        stripes = sorted({int(k[-6:], 16) % _STRIPES for k in keys})
        freed: dict[str, int] = {}
        with ExitStack() as stack:
            for s in stripes:  # in order: two batches can never wait on each other
                stack.enter_context(self._stripes[s])
            keys = [k for k in keys if k not in self._protected]
            if not keys:
                return freed
            with self.engine.begin() as conn:
                gone = conn.execute(
                    delete(ImgBlock).where(ImgBlock.key.in_(keys), ImgBlock.refs == 0)
                    .returning(ImgBlock.key, ImgBlock.size)).all()
            for key, size in gone:
                self.files.remove(key)
                freed[key] = int(size)
        if freed:
            self._release_space(sum(freed.values()))
        return freed

    # -- blocks ------------------------------------------------------------------------------

    def _write(self, key: str, block: bytes) -> bool:
        """Store the block's file unless present; the caller holds the key's protection."""
        with self._stripe(key):
            if self.files.exists(key):
                return False
        self._reserve(len(block))
        with self._stripe(key):
            if self.files.exists(key):
                written = False
            else:
                self.files.write(key, block)
                written = True
        if not written:
            self._release_space(len(block))
        return written

    def _read(self, cid: Cid) -> bytes:
        data = self.files.read(cid.key)
        if data is None:
            raise BlockNotFoundError(f"block {cid} is not in this store", cid=str(cid))
        self._touch(cid.key)
        return data

    def get_block(self, cid: Cid) -> bytes:
        data = self._read(cid)
        verify_block(cid, data)
        return data

    def has_block(self, cid: Cid) -> bool:
        return self.files.exists(cid.key)

    def put_block(self, data: bytes, codec: int = RAW, cid_version: int = 1) -> Cid:
        """As Kubo's ``block/put``: the CID is computed here; the block is not pinned."""
        if len(data) > BLOCK_SIZE_LIMIT:
            raise ValidationError("a block is at most 2 MiB", size=len(data))
        if codec not in (RAW, DAG_PB):
            raise ValidationError("only raw and dag-pb blocks are stored")
        cid = make_cid(data, codec, cid_version if codec == DAG_PB else 1)
        if codec == DAG_PB:
            from hcp.images.dagpb import decode_node

            decode_node(data)
        with self.session() as s:
            s.put(cid, data)
        return cid

    def put_blocks(self, blocks: Iterable[tuple[Cid, bytes]], root: Cid | None = None,
                   pin: bool = False, pinned_by: str | None = None, job_id: str | None = None) -> int:
        """Store verified blocks (a CAR, a fetch); with ``root``, record its DAG and hold it."""
        n = 0
        with self.session() as s:
            for cid, block in blocks:
                verify_block(cid, block)
                s.put(cid, block)
                n += 1
            if root is not None:
                s.commit(root, pin=pin, pinned_by=pinned_by, job_id=job_id)
        return n

    def session(self) -> ImportSession:
        return ImportSession(self)

    # -- files -------------------------------------------------------------------------------

    def add(self, source: Source, params: ImportParams | None = None, pin: bool = True,
            pinned_by: str | None = None, job_id: str | None = None) -> AddResult:
        params = params or ImportParams()
        with self.session() as s:
            imp = FileImporter(s.put, params)
            if hasattr(source, "read"):
                while piece := source.read(1 << 20):  # type: ignore[union-attr]
                    imp.write(piece)
            else:
                for piece in source:  # type: ignore[union-attr]
                    imp.write(piece)
            f = imp.finish()
            s.commit(f.cid, size=f.size, tsize=f.tsize, params=params, pin=pin,
                     pinned_by=pinned_by, job_id=job_id, members=True)
        return AddResult(f.cid, f.size, f.tsize, f.blocks, params, pin)

    def add_tree(self, files: Mapping[str, Source], params: ImportParams | None = None,
                 pin: bool = True, pinned_by: str | None = None) -> AddResult:
        """Files at their paths as one UnixFS directory tree (as ``ipfs add -r``)."""
        params = params or ImportParams()
        blocks = 0
        with self.session() as s:
            entries: dict[str, Entry] = {}
            for path, source in files.items():
                imp = FileImporter(s.put, params)
                for piece in _pieces(source):
                    imp.write(piece)
                f = imp.finish()
                blocks += f.blocks
                entries[path] = Entry(f.cid, f.tsize)
            top = make_tree(entries, s.put, params.cid_version)
            s.commit(top.cid, size=0, tsize=top.tsize, params=params, pin=pin,
                     pinned_by=pinned_by, members=True)
        return AddResult(top.cid, 0, top.tsize, blocks, params, pin)

    def cat(self, cid: Cid, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        self._touch_dag(cid)
        return exporter.cat(cid, self._read, offset, length)

    # -- holds -------------------------------------------------------------------------------

    def pin(self, cid: Cid, pinned_by: str | None = None) -> None:
        with self.session() as s:
            s.commit(cid, pin=True, pinned_by=pinned_by)

    def lease(self, job_id: str, cid: Cid) -> None:
        """Hold ``cid`` for a running job until ``release(job_id)`` (or the lease's expiry)."""
        with self.session() as s:
            s.commit(cid, job_id=job_id)

    def unpin(self, cid: Cid) -> bool:
        root = str(cid)
        with self.engine.begin() as conn:
            gone = conn.execute(delete(ImgPin).where(ImgPin.root == root)).rowcount
            if gone:
                _add_refs(conn, root, -1)
        return bool(gone)

    def release(self, job_id: str) -> int:
        with self.engine.begin() as conn:
            roots = conn.execute(delete(ImgLease).where(ImgLease.job_id == job_id)
                                 .returning(ImgLease.root)).scalars().all()
            for root in roots:
                _add_refs(conn, root, -1)
        return len(roots)

    def expire_leases(self) -> int:
        now = self.clock.now()
        with self.engine.connect() as conn:
            jobs = conn.execute(select(ImgLease.job_id).where(ImgLease.expires_at < now)
                                .distinct()).scalars().all()
        released = sum(self.release(j) for j in jobs)
        if released:
            log.warning("released %d expired image leases (their jobs never released them)", released)
        return released

    def pins(self) -> list[PinInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ImgPin.root, ImgPin.pinned_at, ImgPin.pinned_by)
                                .order_by(ImgPin.root)).all()
        return [PinInfo(_cid(root), at, by) for root, at, by in rows]

    def is_pinned(self, cid: Cid) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(ImgPin.root).where(ImgPin.root == str(cid))) is not None

    def leases(self) -> list[tuple[str, Cid]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ImgLease.job_id, ImgLease.root)).all()
        return [(j, _cid(r)) for j, r in rows]

    def held_roots(self) -> set[Cid]:
        return {p.cid for p in self.pins()} | {c for _, c in self.leases()}

    # -- space -------------------------------------------------------------------------------

    def gc(self) -> GcReport:
        """Remove every block no pin or lease holds. Only batches of blocks being removed are
        locked, so adds go on meanwhile; blocks they write are protected until held."""
        self.expire_leases()
        self._flush_touches()
        removed: list[Cid] = []
        freed = 0
        last = ""
        while True:
            with self.engine.connect() as conn:
                keys = conn.execute(select(ImgBlock.key).where(ImgBlock.refs == 0, ImgBlock.key > last)
                                    .order_by(ImgBlock.key).limit(_GC_BATCH)).scalars().all()
            if not keys:
                break
            last = keys[-1]
            gone = self._collect(list(keys))
            freed += sum(gone.values())
            # Keys are multihashes: reported as CIDv1 raw, as Kubo's multihash-keyed GC does.
            removed.extend(Cid(b"\x01\x55" + bytes.fromhex(k)) for k in gone)
        try:
            with self.engine.begin() as conn:
                # DAG records nothing holds are rebuilt by walking if they are ever held again.
                held = select(ImgPin.root).union(select(ImgLease.root))
                conn.execute(delete(ImgDag).where(ImgDag.root.not_in(held)))
        except IntegrityError:
            log.debug("a DAG record was held meanwhile; it stays")
        log.info("gc removed %d blocks (%d bytes)", len(removed), freed)
        self._collected(freed)
        return GcReport(len(removed), freed, tuple(removed))

    def stat(self) -> RepoStat:
        with self.engine.connect() as conn:
            blocks = conn.scalar(select(func.count()).select_from(ImgBlock)) or 0
            pins = conn.scalar(select(func.count()).select_from(ImgPin)) or 0
            leases = conn.scalar(select(func.count()).select_from(ImgLease)) or 0
        return RepoStat(self._used, self.cap_bytes, int(blocks), int(pins), int(leases))

    @property
    def used_bytes(self) -> int:
        return self._used

    def reconcile(self) -> None:
        """After a crash: index block files that have no row (unheld, so collectable) and drop
        unheld rows whose file is gone."""
        with self.engine.connect() as conn:
            known = dict(conn.execute(select(ImgBlock.key, ImgBlock.refs)).all())
        now = self.clock.now()
        orphans = []
        on_disk = set()
        for key, size in self.files.scan():
            on_disk.add(key)
            if key not in known:
                orphans.append({"key": key, "size": size, "refs": 0, "last_used": now})
        missing = [k for k, refs in known.items() if k not in on_disk]
        with self.engine.begin() as conn:
            for i in range(0, len(orphans), _ROW_BATCH):
                conn.execute(_insert(self.engine, ImgBlock).values(orphans[i:i + _ROW_BATCH])
                             .on_conflict_do_nothing())
            if missing:
                lost = [k for k in missing if known[k] > 0]
                if lost:
                    log.error("%d held blocks are missing from disk (first: %s)", len(lost), lost[0])
                conn.execute(delete(ImgBlock).where(ImgBlock.key.in_(missing), ImgBlock.refs == 0))
            self._used = int(conn.scalar(select(func.coalesce(func.sum(ImgBlock.size), 0))) or 0)

    # -- last use ----------------------------------------------------------------------------

    def _touch(self, key: str) -> None:
        with self._touch_lock:
            self._touched[key] = self.clock.now()
            full = len(self._touched) >= _TOUCH_FLUSH
        if full:
            self._flush_touches()

    def _touch_dag(self, cid: Cid) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ImgDag).where(ImgDag.root == str(cid)).values(last_used=self.clock.now()))

    def _flush_touches(self) -> None:
        with self._touch_lock:
            touched, self._touched = self._touched, {}
        if not touched:
            return
        with self.engine.begin() as conn:
            for key, when in touched.items():
                conn.execute(update(ImgBlock).where(ImgBlock.key == key).values(last_used=when))


def _pieces(source: Source) -> Iterator[bytes]:
    if hasattr(source, "read"):
        while piece := source.read(1 << 20):  # type: ignore[union-attr]
            yield piece
    else:
        yield from source  # type: ignore[misc]


def _cid(text: str) -> Cid:
    from hcp.images.cids import parse_cid

    return parse_cid(text)
