"""The private key an agent or a validator signs with, kept in a file only its owner reads.

Created on first use (mode 0600 from the first byte), read afterwards; like ssh, a key file
that group or others can read is refused. A restarted agent or validator thus keeps its
registered identity; a new key is a rotation (``IdentityBook.register``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nacl.exceptions

from hcp.errors import ConfigError
from hcp.oracle.signing import Signer

VERSION = 1


def load_or_create_signer(path: Path, identity: str) -> Signer:
    path = Path(path)
    if not path.exists():
        fresh = Signer.generate(identity)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_signer(path, identity)  # another process created it first
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": VERSION, "identity": identity,
                       "public_key": fresh.public_key.hex(),
                       "seed": bytes(fresh.key).hex()}, fh)
        return fresh
    return load_signer(path, identity)


def load_signer(path: Path, identity: str) -> Signer:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"the oracle key file {path.name} is readable by others "
                          f"(mode {mode:o}); chmod 600 it")
    try:
        data = json.loads(path.read_text())
        signer = Signer.from_seed(str(data["identity"]), bytes.fromhex(data["seed"]))
    except (OSError, ValueError, KeyError, TypeError, nacl.exceptions.CryptoError) as exc:
        raise ConfigError(f"the oracle key file {path.name} is not valid: "
                          f"{type(exc).__name__}") from None
    if signer.identity != identity:
        raise ConfigError(f"the oracle key file {path.name} belongs to {signer.identity!r}, "
                          f"not {identity!r}")
    return signer
