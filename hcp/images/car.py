"""CARv1 archives: ``varint(len) DAG-CBOR{roots, version: 1}`` then ``varint(len) CID block``
sections. Written as a stream of byte strings; read from any binary stream one section at a
time, each block verified against its CID, so neither side holds the archive in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import dag_cbor
from multiformats import CID as MfCid

from hcp.errors import InvalidCarError, InvalidCidError, TamperedBlockError
from hcp.images.cids import Cid, read_varint, varint, verify_block
from hcp.images.exporter import BlockGetter, walk
from hcp.images.params import BLOCK_SIZE_LIMIT

CAR_MEDIA_TYPE = "application/vnd.ipld.car"
_MAX_HEADER = 64 * 1024
_MAX_SECTION = BLOCK_SIZE_LIMIT + 128


def car_header(roots: Iterable[Cid]) -> bytes:
    header = dag_cbor.encode({"roots": [MfCid.decode(r.binary) for r in roots], "version": 1})
    return varint(len(header)) + header


def car_section(cid: Cid, block: bytes) -> bytes:
    return varint(len(cid.binary) + len(block)) + cid.binary + block


def write_car(roots: Iterable[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> Iterator[bytes]:
    yield car_header(roots)
    for cid, block in blocks:
        yield car_section(cid, block)


def export_car(root: Cid, get: BlockGetter) -> Iterator[bytes]:
    """The whole DAG under ``root`` as a CAR (depth first, as ``ipfs dag export``)."""
    return write_car([root], walk(root, get))


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        piece = stream.read(n - len(buf))
        if not piece:
            raise InvalidCarError("truncated CAR: a section ends early")
        buf += piece
    return bytes(buf)


def _read_varint(stream: BinaryIO) -> int | None:
    raw = bytearray()
    while True:
        b = stream.read(1)
        if not b:
            if raw:
                raise InvalidCarError("truncated CAR: a length ends early")
            return None
        raw += b
        if not b[0] & 0x80:
            return read_varint(bytes(raw))[0]
        if len(raw) > 9:
            raise InvalidCarError("CAR section length is not a valid varint")


def _split_cid(section: bytes) -> tuple[Cid, int]:
    if len(section) >= 34 and section[0] == 0x12 and section[1] == 0x20:
        return Cid(section[:34]), 34
    try:
        _, pos = read_varint(section)
        _, pos = read_varint(section, pos)
        _, p2 = read_varint(section, pos)
        size, p3 = read_varint(section, p2)
    except ValueError as exc:
        raise InvalidCarError(f"CAR section does not start with a CID: {exc}") from exc
    try:
        return Cid(section[:p3 + size]), p3 + size
    except InvalidCidError as exc:
        raise InvalidCarError(f"CAR section does not start with a CID: {exc.detail}") from exc


class CarReader:
    """``roots`` after construction; iterate for verified ``(cid, block)`` pairs."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        n = _read_varint(stream)
        if n is None or not 0 < n <= _MAX_HEADER:
            raise InvalidCarError("not a CAR: missing or oversized header")
        try:
            header = dag_cbor.decode(_read_exact(stream, n))
        except InvalidCarError:
            raise
        except Exception as exc:
            raise InvalidCarError(f"CAR header is not DAG-CBOR: {exc}") from exc
        if not isinstance(header, dict) or header.get("version") != 1:
            raise InvalidCarError("only CARv1 is read (header version must be 1)")
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, MfCid) for r in roots):
            raise InvalidCarError("CAR header roots must be a list of CIDs")
        self.roots = [Cid(bytes(r)) for r in roots]

    def __iter__(self) -> Iterator[tuple[Cid, bytes]]:
        while True:
            n = _read_varint(self._stream)
            if n is None:
                return
            if not 0 < n <= _MAX_SECTION:
                raise InvalidCarError(f"CAR section of {n} bytes (at most {_MAX_SECTION})")
            section = _read_exact(self._stream, n)
            cid, pos = _split_cid(section)
            block = section[pos:]
            try:
                verify_block(cid, block)
            except TamperedBlockError as exc:
                raise InvalidCarError(f"CAR holds a block that does not match its CID {cid}",
                                      cid=str(cid)) from exc
            yield cid, block
