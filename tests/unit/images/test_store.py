"""The embedded block store: holds, GC that never blocks adds, the hard cap, tampering."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from hcp.errors import BlockNotFoundError, StorageFullError, TamperedBlockError
from hcp.images.cids import DAG_PB, RAW
from hcp.images.params import KUBO_CIDV1, ImportParams
from hcp.images.patterns import pattern_bytes
from hcp.images.store.embedded import EmbeddedStore
from tests.unit.images.conftest import ManualClock, make_store


def test_add_cat_pin_gc(store: EmbeddedStore) -> None:
    data = pattern_bytes("a", 700_000)
    kept = store.add(io.BytesIO(data))
    loose = store.add([pattern_bytes("b", 300_000)], pin=False)
    assert store.is_pinned(kept.cid) and not store.is_pinned(loose.cid)
    report = store.gc()
    assert report.removed_blocks == loose.blocks and report.freed_bytes > 0
    assert b"".join(store.cat(kept.cid)) == data
    with pytest.raises(BlockNotFoundError):
        b"".join(store.cat(loose.cid))
    assert store.unpin(kept.cid) and store.gc().removed_blocks == kept.blocks
    assert store.stat().used_bytes == 0 and store.stat().blocks == 0


def test_shared_blocks_stay_while_any_hold_remains(store: EmbeddedStore) -> None:
    data = pattern_bytes("shared", 600_000)
    a = store.add([data])
    store.lease("job-1", a.cid)
    store.unpin(a.cid)
    store.gc()
    assert b"".join(store.cat(a.cid)) == data
    assert store.release("job-1") == 1
    store.gc()
    assert not store.has_block(a.cid)


def test_same_file_twice_is_stored_once(store: EmbeddedStore) -> None:
    data = pattern_bytes("twice", 500_000)
    a = store.add([data])
    used = store.stat().used_bytes
    b = store.add([data])
    assert a.cid == b.cid and store.stat().used_bytes == used


def test_directory_of_files_shares_blocks_with_the_files(store: EmbeddedStore) -> None:
    layer = pattern_bytes("layer", 400_000)
    single = store.add([layer])
    used = store.stat().used_bytes
    tree = store.add_tree({"blobs/layer": [layer], "config.json": [b"{}"]})
    assert store.stat().used_bytes - used < 1000  # only the folders and the small file
    store.unpin(single.cid)
    store.gc()
    from hcp.images.exporter import resolve_path

    assert b"".join(store.cat(resolve_path(tree.cid, "blobs/layer", store.get_block))) == layer


def test_cap_is_hard_and_evicts_lru_unheld_blocks(tmp_path: Path) -> None:
    clock = ManualClock()
    s = make_store(tmp_path, cap=1_000_000, clock=clock)
    old = s.add([pattern_bytes("old", 300_000)], pin=False)
    clock.advance(seconds=10)
    new = s.add([pattern_bytes("new", 300_000)], pin=False)
    clock.advance(seconds=10)
    s.get_block(new.cid)
    held = s.add([pattern_bytes("held", 300_000)])
    clock.advance(seconds=10)
    s.add([pattern_bytes("more", 300_000)])  # needs room: the least recently used goes first
    assert not s.has_block(old.cid) and s.has_block(new.cid)
    assert s.stat().used_bytes <= 1_000_000
    with pytest.raises(StorageFullError) as err:
        s.add([pattern_bytes("huge", 900_000)])
    assert err.value.http_status == 507 and err.value.code == "storage_full"
    assert s.stat().used_bytes <= 1_000_000
    assert b"".join(s.cat(held.cid)) == pattern_bytes("held", 300_000)


def test_gc_never_blocks_adds(store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        store.add([pattern_bytes(f"junk{i}", 300_000)], pin=False)
    in_sweep = threading.Event()
    add_done = threading.Event()
    real = store._collect
    calls = []

    def collect(keys):  # type: ignore[no-untyped-def]
        calls.append(len(keys))
        if len(calls) == 1:
            in_sweep.set()
            # The sweep waits, mid-way, for an add to finish: with a repository lock held
            # here the add could never finish and this wait would time out.
            assert add_done.wait(30), "an add was blocked by the sweep"
        return real(keys)

    monkeypatch.setattr(store, "_collect", collect)
    result = {}
    sweeper = threading.Thread(target=lambda: result.setdefault("gc", store.gc()))
    sweeper.start()
    assert in_sweep.wait(30)
    added = store.add([pattern_bytes("during", 500_000)])
    add_done.set()
    sweeper.join(30)
    assert not sweeper.is_alive()
    # The add finished while the sweep was paused; its blocks were protected while written
    # and pinned before the sweep went on.
    assert result["gc"].removed_blocks >= 4
    assert b"".join(store.cat(added.cid)) == pattern_bytes("during", 500_000)


def test_blocks_being_imported_are_protected_from_gc(store: EmbeddedStore) -> None:
    with store.session() as s:
        from hcp.images.importer import FileImporter

        imp = FileImporter(s.put, ImportParams())
        imp.write(pattern_bytes("slow", 600_000))
        assert store.gc().removed_blocks == 0  # half-written DAG: nothing is garbage yet
        f = imp.finish()
        s.commit(f.cid, pin=True, members=True)
    assert b"".join(store.cat(f.cid)) == pattern_bytes("slow", 600_000)


def test_tampered_block_on_disk_is_refused_naming_the_cid(store: EmbeddedStore) -> None:
    r = store.add([pattern_bytes("t", 300_000)], params=KUBO_CIDV1)
    leaf = next(c for c in __import__("hcp.images.exporter", fromlist=["walk"]).walk(r.cid, store.get_block)
                if c[0].codec == RAW)[0]
    path = store.files.path(leaf.key)
    path.write_bytes(b"x" + path.read_bytes()[1:])
    with pytest.raises(TamperedBlockError) as err:
        b"".join(store.cat(r.cid))
    assert str(leaf) in err.value.detail
    with pytest.raises(TamperedBlockError):
        store.get_block(leaf)


def test_block_put_and_pin_by_walking(store: EmbeddedStore) -> None:
    raw = store.put_block(b"hello", RAW)
    assert str(raw).startswith("bafkrei") and store.get_block(raw) == b"hello"
    from hcp.images.dagpb import Link, NodeType, encode_node, encode_unixfs

    node = encode_node([Link(raw, "", 5)], encode_unixfs(NodeType.FILE, None, 5, [5]))
    root = store.put_block(node, DAG_PB, 0)
    store.pin(root)  # DAG unknown to the index: walked in the store, then held
    store.gc()
    assert b"".join(store.cat(root)) == b"hello"
    orphan = store.put_block(encode_node([Link(store.put_block(b"gone"), "", 4)],
                                         encode_unixfs(NodeType.FILE, None, 4, [4])), DAG_PB, 0)
    store.gc()
    assert not store.has_block(orphan)


def test_expired_leases_are_released(store: EmbeddedStore, clock: ManualClock) -> None:
    r = store.add([b"leased"], pin=False)
    store.lease("job-x", r.cid)
    clock.advance(seconds=3599)
    store.gc()
    assert store.has_block(r.cid)
    clock.advance(seconds=2)
    store.gc()
    assert not store.has_block(r.cid)


def test_reconcile_indexes_orphan_files(tmp_path: Path) -> None:
    s = make_store(tmp_path)
    r = s.add([b"orphan"], pin=False)
    from sqlalchemy import delete

    from hcp.images.models import ImgBlock

    with s.engine.begin() as conn:
        conn.execute(delete(ImgBlock))
    s.reconcile()
    assert s.stat().blocks == 1
    s.gc()
    assert not s.has_block(r.cid) and s.stat().used_bytes == 0
