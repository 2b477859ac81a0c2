"""Content-addressed files of the notary: task datasets and miners' artifacts.

Keys are always chosen by the server (the SHA-256 it computed itself), never taken from a
request, so no upload can name a path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

from hcp.errors import InvalidPayloadFieldError, NotFoundError

log = logging.getLogger(__name__)

_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")


def sha256_ref(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_hash_ref(ref: str, field: str = "dataset_hash") -> str:
    """The hex digest of a ``sha256:<hex>`` reference (lowercase hex only)."""
    m = _HASH.match(ref) if isinstance(ref, str) else None
    if not m:
        raise InvalidPayloadFieldError(f"{field} must be 'sha256:<64 lowercase hex>'", field=field)
    return m.group(1)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ContentStore:
    def __init__(self, root: Path, suffix: str) -> None:
        self.root = Path(root)
        self.suffix = suffix

    def _path(self, hexdigest: str) -> Path:
        return self.root / hexdigest[:2] / f"{hexdigest}{self.suffix}"

    def put(self, data: bytes) -> str:
        ref = sha256_ref(data)
        path = self._path(ref.split(":", 1)[1])
        if not path.exists():
            _atomic_write(path, data)
        return ref

    def path(self, ref: str) -> Path:
        path = self._path(parse_hash_ref(ref))
        if not path.exists():
            raise NotFoundError(f"no {self.suffix.lstrip('.')} {ref}", hash=ref)
        return path

    def get(self, ref: str) -> bytes:
        return self.path(ref).read_bytes()

    def has(self, ref: str) -> bool:
        try:
            self.path(ref)
        except (NotFoundError, InvalidPayloadFieldError):
            return False
        return True

    def uri(self, ref: str) -> str:
        return self._path(parse_hash_ref(ref)).as_uri()


class DatasetStore(ContentStore):
    """Task datasets under ``HCP_HOME/notary/datasets``, keyed by ``sha256:<hex>``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, ".csv")

    def register_file(self, path: Path) -> str:
        return self.put(Path(path).read_bytes())


class ArtifactStore(ContentStore):
    """Submitted artifacts under ``HCP_HOME/notary/artifacts``, keyed by their SHA-256."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, ".tar.gz")
