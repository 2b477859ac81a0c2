"""A miner's identity: a UUID and an Ed25519 key pair, kept in a private key file."""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nacl.exceptions
import nacl.signing

from hcp.clock import utcnow
from hcp.notary.miner.errors import MinerKeyError

log = logging.getLogger(__name__)

KEY_FILE_VERSION = 1


@dataclass(frozen=True)
class MinerKey:
    miner_id: str
    signing_key: nacl.signing.SigningKey
    created_at: datetime

    @classmethod
    def generate(cls, miner_id: str | None = None) -> MinerKey:
        return cls(str(uuid.UUID(miner_id)) if miner_id else str(uuid.uuid4()),
                   nacl.signing.SigningKey.generate(), utcnow())

    @property
    def public_key_hex(self) -> str:
        return self.signing_key.verify_key.encode().hex()

    def sign(self, message: bytes) -> str:
        """Hex of the 64-byte detached Ed25519 signature of ``message``."""
        return self.signing_key.sign(message).signature.hex()

    def to_json(self) -> str:
        return json.dumps({
            "version": KEY_FILE_VERSION,
            "miner_id": self.miner_id,
            "public_key": self.public_key_hex,
            "private_key": self.signing_key.encode().hex(),  # the 32-byte seed
            "created_at": self.created_at.isoformat(),
        }, indent=2) + "\n"

    def save(self, path: Path, overwrite: bool = False) -> Path:
        """Write the key file with mode 0600 from the first byte (never world-readable)."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError as exc:
            raise MinerKeyError(f"{path} exists; refusing to overwrite a miner key",
                                path=str(path)) from exc
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)  # O_TRUNC keeps an old file's mode
            f.write(self.to_json())
        return path


def load_key(path: Path) -> MinerKey:
    """Read a key file; like ssh, refuse one that group or others can read."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError as exc:
        raise MinerKeyError(f"no miner key at {path} (run `hcp miner keygen`)",
                            path=str(path)) from exc
    if stat.S_IMODE(mode) & 0o077:
        raise MinerKeyError(f"{path} is accessible by others (mode {stat.S_IMODE(mode):o}); "
                            "chmod 600 it", path=str(path))
    try:
        data = json.loads(text)
        key = nacl.signing.SigningKey(bytes.fromhex(data["private_key"]))
        miner_id = str(uuid.UUID(data["miner_id"]))
        created = datetime.fromisoformat(data["created_at"])
    except (ValueError, KeyError, TypeError, nacl.exceptions.CryptoError) as exc:
        raise MinerKeyError(f"{path} is not a valid miner key file: {exc}",
                            path=str(path)) from exc
    if data.get("public_key") and data["public_key"] != key.verify_key.encode().hex():
        raise MinerKeyError(f"{path}: public_key does not match private_key", path=str(path))
    return MinerKey(miner_id, key, created)
