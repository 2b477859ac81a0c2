"""UnixFS directories, as ``ipfs add -r`` writes them: one dag-pb node per folder whose links
(sorted by name bytes) carry each entry's name and cumulative size, and Data ``Type=Directory``.

Kubo shards a directory into a HAMT once its links pass 256 KiB (``links-bytes``); hcp's
directories (an image's blobs) stay far below that, so a larger one is refused rather than
given a CID Kubo would not give it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from hcp.errors import ValidationError
from hcp.images.cids import DAG_PB, Cid
from hcp.images.dagpb import Link, NodeType, encode_node, encode_unixfs
from hcp.images.importer import BlockSink, Child

HAMT_THRESHOLD_BYTES = 256 * 1024
_DIR_DATA = encode_unixfs(NodeType.DIRECTORY)


@dataclass(frozen=True, slots=True)
class Entry:
    cid: Cid
    tsize: int


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or len(name.encode()) > 255:
        raise ValidationError(f"invalid directory entry name {name!r}", name=name[:64])


def make_directory(entries: Mapping[str, Entry], sink: BlockSink | None,
                   cid_version: int = 0) -> Child:
    """One folder from its direct entries."""
    for name in entries:
        _check_name(name)
    names = sorted(entries, key=lambda n: n.encode())
    estimate = sum(len(n.encode()) + len(entries[n].cid.binary) for n in names)
    if estimate > HAMT_THRESHOLD_BYTES:
        raise ValidationError("directory too large for a basic UnixFS directory (Kubo would "
                              "shard it into a HAMT, which hcp does not write)", entries=len(names))
    links = [Link(entries[n].cid, n, entries[n].tsize) for n in names]
    block = encode_node(links, _DIR_DATA)
    cid = Cid.from_digest(hashlib.sha256(block).digest(), DAG_PB, cid_version)
    if sink is not None:
        sink(cid, block)
    return Child(cid, 0, len(block) + sum(link.tsize for link in links))


def make_tree(files: Mapping[str, Entry], sink: BlockSink | None, cid_version: int = 0) -> Child:
    """A directory tree from ``{"a/b/c": entry}``: every folder on the way is made."""
    tree: dict = {}
    for path, entry in files.items():
        parts = path.strip("/").split("/")
        node = tree
        for part in parts[:-1]:
            _check_name(part)
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValidationError(f"{path!r} is below a file", path=path[:200])
        if parts[-1] in node:
            raise ValidationError(f"duplicate path {path!r}", path=path[:200])
        node[parts[-1]] = entry

    def build(node: dict) -> Child:
        entries = {}
        for name, value in node.items():
            if isinstance(value, dict):
                child = build(value)
                entries[name] = Entry(child.cid, child.tsize)
            else:
                entries[name] = value
        return make_directory(entries, sink, cid_version)

    return build(tree)
