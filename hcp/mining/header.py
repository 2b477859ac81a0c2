"""Bitcoin block headers, targets and difficulty, plus the SHA-256 pieces the miners share.

Conventions (the ones Bitcoin uses, which are easy to get backwards):
- ``prev_hash`` / ``merkle_root`` / ``hash_hex()`` are *display* hex: the byte order
  block explorers print, i.e. the reverse of the bytes on the wire.
- A header hash is compared to the target as a 256-bit *little-endian* number; a
  header meets its target when ``hash <= target`` (Bitcoin Core's CheckProofOfWork).
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources

from hcp.errors import MiningError

logger = logging.getLogger(__name__)

HEADER_LEN = 80
UINT32_MAX = 0xFFFFFFFF
MAX_TARGET = (1 << 256) - 1
# The difficulty-1 target (bits 0x1d00ffff); difficulty is measured against it.
DIFF1_TARGET = 0xFFFF << 208

# --- SHA-256 constants and a pure-Python compression function -------------------------
# Only used once per job (the midstate of the first 64 header bytes) and to fold the
# nonce-independent rounds; the hot loops live in the numpy / torch kernels.
# fmt: off
SHA256_IV: tuple[int, ...] = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)
SHA256_K: tuple[int, ...] = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
# fmt: on


def rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & UINT32_MAX


def big_sigma0(x: int) -> int:
    return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22)


def big_sigma1(x: int) -> int:
    return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25)


def small_sigma0(x: int) -> int:
    return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3)


def small_sigma1(x: int) -> int:
    return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10)


def sha256_round(state: tuple[int, ...], k_plus_w: int) -> tuple[int, ...]:
    """One SHA-256 round on Python ints; ``k_plus_w`` is K[t] + W[t]."""
    a, b, c, d, e, f, g, h = state
    t1 = (h + big_sigma1(e) + (g ^ (e & (f ^ g))) + k_plus_w) & UINT32_MAX
    t2 = (big_sigma0(a) + ((a & b) | (c & (a | b)))) & UINT32_MAX
    return ((t1 + t2) & UINT32_MAX, a, b, c, (d + t1) & UINT32_MAX, e, f, g)


def sha256_compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """The SHA-256 compression function over one 64-byte block."""
    w = list(struct.unpack(">16I", block))
    for t in range(16, 64):
        w.append(
            (small_sigma1(w[t - 2]) + w[t - 7] + small_sigma0(w[t - 15]) + w[t - 16]) & UINT32_MAX
        )
    s = state
    for t in range(64):
        s = sha256_round(s, (SHA256_K[t] + w[t]) & UINT32_MAX)
    return tuple((x + y) & UINT32_MAX for x, y in zip(state, s))


def sha256_midstate(first64: bytes) -> tuple[int, ...]:
    """SHA-256 state after the first 64 header bytes: constant for a whole job."""
    if len(first64) != 64:
        raise MiningError("midstate needs exactly 64 bytes", length=len(first64))
    return sha256_compress(SHA256_IV, first64)


def double_sha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# --- targets and difficulty ----------------------------------------------------------


def _check_uint32(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT32_MAX:
        raise MiningError(f"{name} must be an integer in 0..2^32-1", field=name, value=repr(value))
    return value


def bits_to_target(bits: int) -> int:
    """Decode compact ``nBits`` into the full target, refusing what Bitcoin Core refuses."""
    _check_uint32("bits", bits)
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if bits & 0x00800000 and mantissa:
        raise MiningError("bits encode a negative target", bits=f"{bits:08x}")
    if mantissa and (
        exponent > 34
        or (mantissa > 0xFF and exponent > 33)
        or (mantissa > 0xFFFF and exponent > 32)
    ):
        raise MiningError("bits exponent overflows 256 bits", bits=f"{bits:08x}")
    if exponent <= 3:
        target = mantissa >> (8 * (3 - exponent))
    else:
        target = mantissa << (8 * (exponent - 3))
    if target == 0:
        raise MiningError("bits encode a zero target", bits=f"{bits:08x}")
    return target


def check_target(target: int) -> int:
    if not isinstance(target, int) or isinstance(target, bool) or not 0 < target <= MAX_TARGET:
        raise MiningError("target must be an integer in 1..2^256-1", target=repr(target))
    return target


def target_to_bits(target: int) -> int:
    """Encode a target in compact form (lossy: keeps the top 3 significant bytes)."""
    check_target(target)
    size = (target.bit_length() + 7) // 8
    compact = target << (8 * (3 - size)) if size <= 3 else target >> (8 * (size - 3))
    if compact & 0x00800000:  # the mantissa's top bit is a sign bit; move it out of the way
        compact >>= 8
        size += 1
    return compact | (size << 24)


def difficulty_from_target(target: int) -> float:
    """Difficulty = diff-1 target / target (exactly 1.0 for bits 0x1d00ffff)."""
    check_target(target)
    return DIFF1_TARGET / target  # int / int is correctly rounded in Python


def share_target(share_difficulty: float) -> int:
    """The target a share of ``share_difficulty`` must meet: diff-1 target / difficulty."""
    if isinstance(share_difficulty, bool) or not isinstance(share_difficulty, (int, float)):
        raise MiningError("share difficulty must be a number", difficulty=repr(share_difficulty))
    if not share_difficulty > 0 or share_difficulty == float("inf"):  # also catches NaN
        raise MiningError(
            "share difficulty must be positive and finite", difficulty=share_difficulty
        )
    target = int(Fraction(DIFF1_TARGET) / Fraction(share_difficulty))  # exact, then floor
    if target < 1:
        raise MiningError("share difficulty is too high for any hash", difficulty=share_difficulty)
    return min(target, MAX_TARGET)


def hash_meets_target(hash_bytes_le: bytes, target: int) -> bool:
    if len(hash_bytes_le) != 32:
        raise MiningError("a hash has 32 bytes", length=len(hash_bytes_le))
    return int.from_bytes(hash_bytes_le, "little") <= target


def _parse_hash_hex(name: str, value: object) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise MiningError(f"{name} must be 64 hex characters", field=name, value=repr(value))
    try:
        bytes.fromhex(value)
    except ValueError:
        raise MiningError(f"{name} is not valid hex", field=name, value=value) from None
    return value.lower()


# --- the header ----------------------------------------------------------------------


@dataclass(frozen=True)
class BlockHeader:
    """An 80-byte Bitcoin block header; hashes are display (big-endian) hex."""

    version: int
    prev_hash: str
    merkle_root: str
    time: int
    bits: int
    nonce: int

    def __post_init__(self) -> None:
        v = self.version
        if not isinstance(v, int) or isinstance(v, bool) or not -(1 << 31) <= v < (1 << 31):
            raise MiningError("version must be a signed 32-bit integer", value=repr(v))
        object.__setattr__(self, "prev_hash", _parse_hash_hex("prev_hash", self.prev_hash))
        object.__setattr__(self, "merkle_root", _parse_hash_hex("merkle_root", self.merkle_root))
        for name in ("time", "bits", "nonce"):
            _check_uint32(name, getattr(self, name))

    def serialize(self) -> bytes:
        return (
            struct.pack("<i", self.version)
            + bytes.fromhex(self.prev_hash)[::-1]
            + bytes.fromhex(self.merkle_root)[::-1]
            + struct.pack("<III", self.time, self.bits, self.nonce)
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> BlockHeader:
        if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) != HEADER_LEN:
            length = len(raw) if hasattr(raw, "__len__") else None
            raise MiningError("a block header has exactly 80 bytes", length=length)
        raw = bytes(raw)
        (version,) = struct.unpack_from("<i", raw, 0)
        time, bits, nonce = struct.unpack_from("<III", raw, 68)
        return cls(version, raw[4:36][::-1].hex(), raw[36:68][::-1].hex(), time, bits, nonce)

    @classmethod
    def from_hex(cls, text: str) -> BlockHeader:
        if not isinstance(text, str):
            raise MiningError("header hex must be a string", value=repr(text))
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise MiningError("header is not valid hex", value=text[:200]) from None
        return cls.from_bytes(raw)

    def hash(self) -> bytes:
        """The header's SHA-256d in wire (little-endian) byte order."""
        return double_sha256(self.serialize())

    def hash_hex(self) -> str:
        return self.hash()[::-1].hex()

    def target(self) -> int:
        return bits_to_target(self.bits)

    def meets_target(self, target: int | None = None) -> bool:
        return hash_meets_target(self.hash(), self.target() if target is None else target)

    def with_nonce(self, nonce: int) -> BlockHeader:
        return replace(self, nonce=nonce)


# --- headers to mine on ---------------------------------------------------------------


def local_job_template(tip: BlockHeader, job_id: str, now_unix: int) -> BlockHeader:
    """A job on top of a real chain tip: real SHA-256d work at the tip's difficulty."""
    if not isinstance(job_id, str) or not job_id:
        raise MiningError("job_id must be a non-empty string", value=repr(job_id))
    if (
        not isinstance(now_unix, int)
        or isinstance(now_unix, bool)
        or not 0 <= now_unix <= UINT32_MAX
    ):
        raise MiningError("now_unix must be a 32-bit unix time", value=repr(now_unix))
    merkle_root = double_sha256(b"hcp/local-job/" + job_id.encode("utf-8"))[::-1].hex()
    time = (
        max(now_unix, tip.time + 1) if tip.time < UINT32_MAX else tip.time
    )  # never before the tip
    return BlockHeader(tip.version, tip.hash_hex(), merkle_root, time, tip.bits, 0)


def load_sample_headers() -> list[BlockHeader]:
    """The ten real mainnet headers shipped in ``hcp/data`` (each checked against its hash)."""
    text = (
        resources.files("hcp").joinpath("data/btc_headers_sample.json").read_text(encoding="utf-8")
    )
    headers = []
    for row in json.loads(text):
        header = BlockHeader.from_hex(row["header_hex"])
        if header.hash_hex() != row["hash"]:
            raise MiningError(
                "sample header does not hash to its recorded hash", height=row.get("height")
            )
        headers.append(header)
    return headers
