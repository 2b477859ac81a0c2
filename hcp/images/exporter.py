"""Reading DAGs back: ``cat`` of a file or a byte range of it, directory listings, path
resolution and block walks. Every block is checked against its CID before it is used, so a
block source (disk, peer, proof) never has to be trusted.

A byte range descends only into the children whose ``blocksizes`` overlap it, so reading
1 KiB of a 1 GiB file touches the root, one node per level and one or two leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hcp.errors import InvalidBlockError, ValidationError
from hcp.images.cids import DAG_PB, RAW, Cid, verify_block
from hcp.images.dagpb import Link, NodeType, decode_node, decode_unixfs
from hcp.images.params import BLOCK_SIZE_LIMIT

BlockGetter = Callable[[Cid], bytes]
Visitor = Callable[[Cid, bytes], None]


def fetch_verified(cid: Cid, get: BlockGetter) -> bytes:
    block = get(cid)
    if len(block) > BLOCK_SIZE_LIMIT:
        raise InvalidBlockError(f"block {cid} is larger than 2 MiB", cid=str(cid))
    verify_block(cid, block)
    return block


def file_size(cid: Cid, get: BlockGetter) -> int:
    block = fetch_verified(cid, get)
    if cid.codec == RAW:
        return len(block)
    fs = _file_node(cid, block)[1]
    if fs.filesize is not None:
        return fs.filesize
    return len(fs.data or b"") + sum(fs.blocksizes)


def cat(cid: Cid, get: BlockGetter, offset: int = 0, length: int | None = None,
        visit: Visitor | None = None) -> Iterator[bytes]:
    """The file's bytes from ``offset`` (``length`` of them, or to the end)."""
    if offset < 0 or (length is not None and length < 0):
        raise ValidationError("offset and length must be non-negative")
    end = (1 << 63) if length is None else offset + length
    if end <= offset:
        return
    yield from _read(cid, offset, end, get, visit)


def _file_node(cid: Cid, block: bytes):  # type: ignore[no-untyped-def]
    if cid.codec != DAG_PB:
        raise InvalidBlockError(f"{cid} is neither raw nor dag-pb", cid=str(cid))
    node = decode_node(block)
    fs = decode_unixfs(node.data)
    if fs.type not in (NodeType.FILE, NodeType.RAW):
        raise ValidationError(f"{cid} is a UnixFS {fs.type.name.lower()}, not a file", cid=str(cid))
    if node.links and len(fs.blocksizes) != len(node.links):
        raise InvalidBlockError(f"{cid}: {len(node.links)} links but {len(fs.blocksizes)} "
                                "blocksizes", cid=str(cid))
    return node, fs


def _read(cid: Cid, start: int, end: int, get: BlockGetter,
          visit: Visitor | None) -> Iterator[bytes]:
    block = fetch_verified(cid, get)
    if visit is not None:
        visit(cid, block)
    if cid.codec == RAW:
        if start < len(block):
            yield block[start:end]
        return
    node, fs = _file_node(cid, block)
    pos = 0
    if fs.data:
        if start < len(fs.data):
            yield fs.data[start:end]
        pos = len(fs.data)
    for link, size in zip(node.links, fs.blocksizes):
        lo, hi = pos, pos + size
        if hi > start and lo < end:
            want = min(end, hi) - max(start, lo)
            got = 0
            for piece in _read(link.cid, max(start - lo, 0), min(end, hi) - lo, get, visit):
                got += len(piece)
                yield piece
            if got != want:
                raise InvalidBlockError(f"{link.cid} holds {got} of the {want} bytes its parent "
                                        f"{cid} says it has", cid=str(link.cid))
        pos = hi
        if pos >= end:
            break


def list_directory(cid: Cid, get: BlockGetter) -> list[Link]:
    block = fetch_verified(cid, get)
    if cid.codec != DAG_PB:
        raise ValidationError(f"{cid} is not a directory", cid=str(cid))
    node = decode_node(block)
    fs = decode_unixfs(node.data)
    if fs.type is not NodeType.DIRECTORY:
        raise ValidationError(f"{cid} is not a directory (UnixFS {fs.type.name.lower()})",
                              cid=str(cid))
    return list(node.links)


def is_directory(cid: Cid, get: BlockGetter) -> bool:
    if cid.codec != DAG_PB:
        return False
    fs = decode_unixfs(decode_node(fetch_verified(cid, get)).data)
    return fs.type is NodeType.DIRECTORY


def resolve_path(root: Cid, path: str, get: BlockGetter) -> Cid:
    """The CID at ``root/a/b``: each name looked up in its folder's links."""
    cid = root
    for part in [p for p in path.split("/") if p]:
        for link in list_directory(cid, get):
            if link.name == part:
                cid = link.cid
                break
        else:
            from hcp.errors import NotFoundError

            raise NotFoundError(f"no {part!r} in {cid}", cid=str(cid), name=part[:255])
    return cid


def walk(root: Cid, get: BlockGetter) -> Iterator[tuple[Cid, bytes]]:
    """Every block of the DAG once, depth first, parents before children (``dag export``'s
    order); each is verified before its links are followed."""
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid.multihash in seen:
            continue
        seen.add(cid.multihash)
        block = fetch_verified(cid, get)
        yield cid, block
        if cid.codec == DAG_PB:
            stack.extend(reversed([link.cid for link in decode_node(block).links]))
        elif cid.codec != RAW:
            raise InvalidBlockError(f"{cid}: only dag-pb and raw DAGs are walked", cid=str(cid))
