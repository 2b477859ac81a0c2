"""Block headers, targets and difficulty, checked against ten real mainnet headers."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from hcp.errors import MiningError
from hcp.mining import (
    DIFF1_TARGET,
    MAX_TARGET,
    BlockHeader,
    bits_to_target,
    difficulty_from_target,
    double_sha256,
    hash_meets_target,
    load_sample_headers,
    share_target,
    target_to_bits,
)
from hcp.mining.header import SHA256_IV, sha256_compress, sha256_midstate

SAMPLES = json.loads((Path(__file__).parents[1] / "data" / "btc_headers_sample.json").read_text())
IDS = [f"h{row['height']}" for row in SAMPLES]


@pytest.mark.parametrize("row", SAMPLES, ids=IDS)
def test_real_header_round_trips_hashes_and_meets_its_target(row: dict) -> None:
    header = BlockHeader.from_hex(row["header_hex"])
    assert header.serialize().hex() == row["header_hex"]
    assert (header.version, header.prev_hash, header.merkle_root) == (
        row["version"],
        row["prev_hash"],
        row["merkle_root"],
    )
    assert (header.time, header.bits, header.nonce) == (row["time"], row["bits"], row["nonce"])
    built = BlockHeader(
        row["version"], row["prev_hash"], row["merkle_root"], row["time"], row["bits"], row["nonce"]
    )
    assert built == header and built.serialize() == bytes.fromhex(row["header_hex"])
    assert BlockHeader.from_bytes(header.serialize()) == header
    assert header.hash_hex() == row["hash"]
    assert header.hash() == bytes.fromhex(row["hash"])[::-1]
    assert hash_meets_target(header.hash(), bits_to_target(row["bits"]))
    assert header.meets_target()
    assert target_to_bits(bits_to_target(row["bits"])) == row["bits"]
    assert not header.with_nonce(
        row["nonce"] ^ 1
    ).meets_target()  # a neighbour is (almost surely) not a block


def test_chain_links_prev_hash_to_previous_block() -> None:
    by_height = {row["height"]: row for row in SAMPLES}
    assert by_height[1]["prev_hash"] == BlockHeader.from_hex(by_height[0]["header_hex"]).hash_hex()
    assert by_height[2]["prev_hash"] == BlockHeader.from_hex(by_height[1]["header_hex"]).hash_hex()


def test_difficulty_one_is_exact() -> None:
    assert bits_to_target(0x1D00FFFF) == DIFF1_TARGET
    assert difficulty_from_target(bits_to_target(0x1D00FFFF)) == 1.0
    assert share_target(1) == DIFF1_TARGET
    assert share_target(2.0) == DIFF1_TARGET // 2


def test_known_compact_values() -> None:
    # Examples from the Bitcoin wiki / Bitcoin Core's arith_uint256 tests.
    assert bits_to_target(0x1B0404CB) == 0x404CB << (8 * (0x1B - 3))
    assert difficulty_from_target(bits_to_target(0x1B0404CB)) == pytest.approx(
        16307.420938523983, rel=1e-12
    )
    assert bits_to_target(0x01123456) == 0x12
    assert bits_to_target(0x02123456) == 0x1234
    assert bits_to_target(0x04123456) == 0x12345600
    assert bits_to_target(0x05009234) == 0x92340000
    assert target_to_bits(0x80) == 0x02008000  # the sign bit forces one more byte
    assert target_to_bits(0x12345600) == 0x04123456


def test_share_target_is_capped_and_scales() -> None:
    assert share_target(1e-80) == MAX_TARGET
    assert share_target(2**-16) == DIFF1_TARGET << 16


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", None, True])
def test_share_target_rejects_non_positive_or_non_numbers(bad: object) -> None:
    with pytest.raises(MiningError):
        share_target(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bits", [0x04923456, 0x01FEDCBA, 0xFF123456, 0x22010000, 0x1D000000, -1, 1 << 32]
)
def test_bad_bits_are_refused(bits: int) -> None:
    with pytest.raises(MiningError):
        bits_to_target(bits)


@pytest.mark.parametrize("target", [0, -5, 1 << 256, 1.5])
def test_bad_targets_are_refused(target: object) -> None:
    with pytest.raises(MiningError):
        target_to_bits(target)  # type: ignore[arg-type]
    with pytest.raises(MiningError):
        difficulty_from_target(target)  # type: ignore[arg-type]


def test_hash_meets_target_is_inclusive_and_checks_length() -> None:
    header = BlockHeader.from_hex(SAMPLES[-1]["header_hex"])
    value = int.from_bytes(header.hash(), "little")
    assert hash_meets_target(header.hash(), value)
    assert not hash_meets_target(header.hash(), value - 1)
    with pytest.raises(MiningError):
        hash_meets_target(header.hash()[:31], value)


GOOD = SAMPLES[0]


@pytest.mark.parametrize(
    "change",
    [
        {"prev_hash": "00" * 31},
        {"prev_hash": "zz" * 32},
        {"merkle_root": 5},
        {"nonce": -1},
        {"nonce": 1 << 32},
        {"time": 1.5},
        {"bits": 1 << 32},
        {"version": 1 << 31},
        {"version": True},
    ],
)
def test_bad_header_fields_are_refused(change: dict) -> None:
    fields = {k: GOOD[k] for k in ("version", "prev_hash", "merkle_root", "time", "bits", "nonce")}
    fields.update(change)
    with pytest.raises(MiningError):
        BlockHeader(**fields)


@pytest.mark.parametrize(
    "text", [GOOD["header_hex"][:-2], GOOD["header_hex"] + "00", "zz" * 80, 123]
)
def test_bad_header_hex_is_refused(text: object) -> None:
    with pytest.raises(MiningError):
        BlockHeader.from_hex(text)  # type: ignore[arg-type]


def test_from_bytes_needs_80_bytes() -> None:
    with pytest.raises(MiningError):
        BlockHeader.from_bytes(bytes(79))


def test_sha256_primitives_match_hashlib() -> None:
    assert (
        double_sha256(b"").hex()
        == "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
    )
    message = b"abc"
    block = message + b"\x80" + bytes(64 - len(message) - 9) + struct.pack(">Q", 8 * len(message))
    digest = b"".join(w.to_bytes(4, "big") for w in sha256_compress(SHA256_IV, block))
    assert digest == hashlib.sha256(message).digest()
    header = bytes.fromhex(GOOD["header_hex"])
    mid = sha256_midstate(header[:64])
    tail = header[64:] + b"\x80" + bytes(64 - 16 - 9) + struct.pack(">Q", 640)
    first = b"".join(w.to_bytes(4, "big") for w in sha256_compress(mid, tail))
    assert first == hashlib.sha256(header).digest()


def test_packaged_samples_match_test_copy() -> None:
    headers = load_sample_headers()
    assert [h.serialize().hex() for h in headers] == [row["header_hex"] for row in SAMPLES]
