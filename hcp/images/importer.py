"""The streaming UnixFS file importer: Kubo's ``ipfs add`` layout, byte for byte.

Fixed-size chunks become leaves (dag-pb UnixFS ``File`` nodes, or raw blocks with raw leaves);
leaves gather under balanced internal nodes of at most ``max_links`` children, as boxo's
``balanced`` builder makes them: a level is closed into a node only when one more child arrives
and it is already full, so the last child of every level may be a node with a single child,
and a one-chunk file is its leaf. Memory is one chunk plus ``max_links`` links per level, whatever
the file's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from hcp.images.cids import DAG_PB, RAW, Cid
from hcp.images.dagpb import Link, NodeType, encode_node, encode_unixfs, leaf_prefix
from hcp.images.params import ImportParams

BlockSink = Callable[[Cid, bytes], None]


@dataclass(frozen=True, slots=True)
class Child:
    """A finished subtree: its CID, the file bytes under it, and its cumulative DAG size."""

    cid: Cid
    filesize: int
    tsize: int


@dataclass(frozen=True)
class ImportedFile:
    cid: Cid
    size: int  # file bytes
    tsize: int  # every block of the DAG, as Kubo's Tsize / CumulativeSize
    blocks: int
    params: ImportParams


@dataclass
class FileImporter:
    """Push bytes with ``write``, then ``finish`` for the root; every block goes to ``sink``
    the moment it is complete (children always before their parents). ``sink=None`` only
    computes the CID."""

    sink: BlockSink | None
    params: ImportParams = field(default_factory=ImportParams)

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._levels: list[list[Child]] = [[]]
        self._size = 0
        self._blocks = 0
        self._done = False
        self._leaf_codec = RAW if self.params.raw_leaves else DAG_PB

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise RuntimeError("write after finish")
        size = self.params.chunk_size
        view = memoryview(data)
        if not self._buf and len(view) >= size:
            # Whole chunks straight from the caller's buffer: no staging copy.
            whole = len(view) - len(view) % size
            for off in range(0, whole, size):
                self._leaf(view[off:off + size])
            view = view[whole:]
        while view:
            take = min(size - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) == size:
                self._leaf(self._buf)
                self._buf = bytearray()

    def finish(self) -> ImportedFile:
        if self._done:
            raise RuntimeError("finish called twice")
        self._done = True
        if self._buf or self._size == 0 and not self._levels[0]:
            self._leaf(self._buf)  # the last partial chunk, or the empty file's single leaf
        levels = self._levels
        i = 0
        while True:
            top = i == len(levels) - 1
            if top and len(levels[i]) == 1:
                root = levels[i][0]
                break
            node = self._node(levels[i])
            levels[i] = []
            if top:
                root = node
                break
            self._push(i + 1, node)
            i += 1
        return ImportedFile(root.cid, self._size, root.tsize, self._blocks, self.params)

    # -- internals -------------------------------------------------------------------------

    def _leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if self.params.raw_leaves:
            h = hashlib.sha256(chunk)
            parts: tuple[bytes | bytearray | memoryview, ...] = (chunk,)
        elif n:
            prefix, suffix = leaf_prefix(n)
            # Hashing the parts in place is measurably faster than hashing their join.
            h = hashlib.sha256(prefix)
            h.update(chunk)
            h.update(suffix)
            parts = (prefix, chunk, suffix)
        else:
            # The empty file's leaf has no Data field at all (Kubo writes none).
            parts = (encode_node([], encode_unixfs(NodeType.FILE, None, 0)),)
            h = hashlib.sha256(parts[0])
        cid = Cid.from_digest(h.digest(), self._leaf_codec, self.params.cid_version)
        block_len = sum(len(p) for p in parts)
        if self.sink is not None:
            self.sink(cid, b"".join(parts))
        self._blocks += 1
        self._size += n
        self._push(0, Child(cid, n, block_len))

    def _push(self, level: int, child: Child) -> None:
        levels = self._levels
        if level == len(levels):
            levels.append([])
        if len(levels[level]) == self.params.max_links:
            full = self._node(levels[level])
            levels[level] = []
            self._push(level + 1, full)
        levels[level].append(child)

    def _node(self, children: list[Child]) -> Child:
        filesize = sum(c.filesize for c in children)
        data = encode_unixfs(NodeType.FILE, None, filesize, [c.filesize for c in children])
        block = encode_node([Link(c.cid, "", c.tsize) for c in children], data)
        cid = Cid.from_digest(hashlib.sha256(block).digest(), DAG_PB, self.params.cid_version)
        if self.sink is not None:
            self.sink(cid, block)
        self._blocks += 1
        return Child(cid, filesize, len(block) + sum(c.tsize for c in children))


def import_stream(source: BinaryIO | Iterable[bytes], sink: BlockSink,
                  params: ImportParams | None = None, read_size: int = 1 << 20) -> ImportedFile:
    """Import a binary file object or an iterable of byte strings."""
    imp = FileImporter(sink, params or ImportParams())
    if hasattr(source, "read"):
        while chunk := source.read(read_size):  # type: ignore[union-attr]
            imp.write(chunk)
    else:
        for chunk in source:  # type: ignore[union-attr]
            imp.write(chunk)
    return imp.finish()


def import_bytes(data: bytes, sink: BlockSink | None = None,
                 params: ImportParams | None = None) -> ImportedFile:
    imp = FileImporter(sink, params or ImportParams())
    imp.write(data)
    return imp.finish()
