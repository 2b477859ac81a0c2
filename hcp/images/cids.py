"""CIDs as hcp uses them: built from block bytes, checked against them, written one way.

One CID has exactly one string here: CIDv0 in base58btc (``Qm...``), CIDv1 in lowercase
base32 (``b...``), whatever base the caller wrote it in.

``multiformats`` parses every spelling a caller may send (any multibase, any codec name); the
importer, though, makes one CID per 256 KiB block and multiformats' ``CID`` costs about as
much as hashing the block, so inside hcp a CID is this small immutable value over the binary
form, with the two encodings hcp writes done by ``base64`` and integer arithmetic.
"""

from __future__ import annotations

import base64
import hashlib

from multiformats import CID as _MfCid
from multiformats import multihash

from hcp.errors import InvalidCidError, TamperedBlockError

DAG_PB = 0x70
RAW = 0x55
DAG_CBOR = 0x71
SHA2_256 = 0x12
IDENTITY = 0x00
_CODEC_NAMES = {DAG_PB: "dag-pb", RAW: "raw", DAG_CBOR: "dag-cbor"}
_MAX_TEXT = 128
_MAX_BINARY = 128
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """(value, position after it); ValueError on a truncated or over-long varint."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or over-long varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


class Cid:
    """A content identifier: version, codec and multihash, kept as its binary form."""

    __slots__ = ("_text", "binary", "codec", "multihash", "version")

    def __init__(self, binary: bytes) -> None:
        self.binary = binary
        self._text: str | None = None
        if len(binary) == 34 and binary[0] == SHA2_256 and binary[1] == 32:
            self.version, self.codec, self.multihash = 0, DAG_PB, binary
            return
        try:
            version, pos = read_varint(binary)
            codec, pos = read_varint(binary, pos)
            _code, p2 = read_varint(binary, pos)
            size, p3 = read_varint(binary, p2)
        except ValueError as exc:
            raise InvalidCidError(f"not a valid binary CID: {exc}") from exc
        if version != 1 or p3 + size != len(binary):
            raise InvalidCidError("not a valid binary CID (only CIDv0 and CIDv1 exist)")
        self.version, self.codec, self.multihash = 1, codec, binary[pos:]

    @classmethod
    def from_digest(cls, digest: bytes, codec: int, version: int) -> Cid:
        mh = bytes((SHA2_256, 32)) + digest
        return cls(mh if version == 0 else b"\x01" + varint(codec) + mh)

    @property
    def hash_code(self) -> int:
        return read_varint(self.multihash)[0]

    @property
    def digest(self) -> bytes:
        _, pos = read_varint(self.multihash)
        _, pos = read_varint(self.multihash, pos)
        return self.multihash[pos:]

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES.get(self.codec, hex(self.codec))

    def __str__(self) -> str:
        if self._text is None:
            if self.version == 0:
                self._text = _b58encode(self.binary)
            else:
                self._text = "b" + base64.b32encode(self.binary).decode().lower().rstrip("=")
        return self._text

    def __repr__(self) -> str:
        return f"Cid({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cid) and other.binary == self.binary

    def __hash__(self) -> int:
        return hash(self.binary)

    def __bytes__(self) -> bytes:
        return self.binary

    @property
    def key(self) -> str:
        """The store's key: the multihash in hex, so the CIDv0 and CIDv1 of one dag-pb block
        (the same bytes) are kept once, as Kubo's blockstore does."""
        return self.multihash.hex()

    def to_v1(self) -> Cid:
        return self if self.version == 1 else Cid(b"\x01" + varint(self.codec) + self.multihash)


def parse_cid(value: str | bytes | Cid) -> Cid:
    """A CID from its text (any multibase) or binary form; a clear typed error otherwise."""
    if isinstance(value, Cid):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value or len(value) > _MAX_BINARY:
            raise InvalidCidError("a binary CID is 1..128 bytes")
        return Cid(bytes(value))
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise InvalidCidError("a CID is a non-empty string of at most 128 characters")
    text = value.strip()
    fast = _fast_decode(text)
    if fast is not None:
        return fast
    try:
        decoded = _MfCid.decode(text)
    except Exception as exc:  # multiformats raises many ValueError/KeyError kinds
        raise InvalidCidError(f"not a valid CID: {exc}", cid=text[:_MAX_TEXT]) from exc
    return Cid(bytes(decoded))


_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def _fast_decode(text: str) -> Cid | None:
    """The two canonical spellings without multiformats (a gateway parses one per request);
    anything else, or anything odd, goes the general way."""
    try:
        if len(text) == 46 and text.startswith("Qm"):
            n = 0
            for ch in text:
                n = n * 58 + _B58_INDEX[ch]
            raw = n.to_bytes(34, "big")
        elif text.startswith("b") and text[1:].islower():
            body = text[1:].upper()
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
            if raw[:1] != b"\x01":
                return None
        else:
            return None
        cid = Cid(raw)
    except (KeyError, ValueError, OverflowError, InvalidCidError):
        return None
    return cid if str(cid) == text else None


def normalize(value: str | bytes | Cid) -> str:
    """The canonical string of any spelling of a CID."""
    return str(parse_cid(value))


def make_cid(data: bytes | memoryview, codec: int, version: int) -> Cid:
    """The sha2-256 CID of a block."""
    return Cid.from_digest(hashlib.sha256(data).digest(), codec, version)


def verify_block(cid: Cid, data: bytes | memoryview) -> None:
    """Raise ``TamperedBlockError`` naming the CID unless ``data`` hashes to it."""
    code = cid.hash_code
    if code == SHA2_256:
        ok = hashlib.sha256(data).digest() == cid.digest
    elif code == IDENTITY:
        ok = bytes(data) == cid.digest
    else:
        try:
            ok = bytes(multihash.digest(bytes(data), multihash.get(code).name)) == cid.multihash
        except Exception as exc:
            raise InvalidCidError(f"unsupported hash function 0x{code:x} in {cid}",
                                  cid=str(cid)) from exc
    if not ok:
        raise TamperedBlockError(f"block {cid} does not hash to its CID: refused", cid=str(cid))
