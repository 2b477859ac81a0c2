"""Miner key files: private from the first byte, round-trip, and refused when unsafe."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import nacl.signing
import pytest

from hcp.notary.miner.errors import MinerKeyError
from hcp.notary.miner.keys import MinerKey, load_key


def test_saved_key_is_mode_0600_and_round_trips(tmp_path: Path) -> None:
    key = MinerKey.generate()
    path = key.save(tmp_path / "sub" / "key.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path)
    assert loaded.miner_id == key.miner_id
    assert uuid.UUID(loaded.miner_id).version == 4
    assert loaded.public_key_hex == key.public_key_hex
    assert len(bytes.fromhex(key.public_key_hex)) == 32
    # The loaded key signs what the original's public key verifies.
    sig = bytes.fromhex(loaded.sign(b"hello"))
    nacl.signing.VerifyKey(bytes.fromhex(key.public_key_hex)).verify(b"hello", sig)


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = MinerKey.generate().save(tmp_path / "key.json")
    with pytest.raises(MinerKeyError, match="refusing to overwrite"):
        MinerKey.generate().save(path)
    second = MinerKey.generate()
    path.chmod(0o644)
    second.save(path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # tightened on overwrite too
    assert load_key(path).miner_id == second.miner_id


def test_given_miner_id_is_kept_and_validated() -> None:
    mid = str(uuid.uuid4())
    assert MinerKey.generate(mid).miner_id == mid
    with pytest.raises(ValueError):
        MinerKey.generate("not-a-uuid")


def test_refuses_key_readable_by_others(tmp_path: Path) -> None:
    path = MinerKey.generate().save(tmp_path / "key.json")
    path.chmod(0o644)
    with pytest.raises(MinerKeyError, match="accessible by others"):
        load_key(path)


def test_missing_and_malformed_key_files(tmp_path: Path) -> None:
    with pytest.raises(MinerKeyError, match="keygen"):
        load_key(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    bad.chmod(0o600)
    with pytest.raises(MinerKeyError, match="not a valid miner key"):
        load_key(bad)


def test_public_key_must_match_private_key(tmp_path: Path) -> None:
    path = MinerKey.generate().save(tmp_path / "key.json")
    data = json.loads(path.read_text())
    data["public_key"] = MinerKey.generate().public_key_hex
    path.write_text(json.dumps(data))
    with pytest.raises(MinerKeyError, match="does not match"):
        load_key(path)
