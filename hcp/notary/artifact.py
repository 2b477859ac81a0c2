"""Safe extraction of a miner's ``.tar.gz`` artifact.

The archive is untrusted: members may try ``../`` or absolute paths, links, device nodes,
or decompress to far more than they weigh. Nothing is trusted from the headers: bytes are
counted while streaming, and every path is checked before anything is written.
"""

from __future__ import annotations

import io
import logging
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from hcp.errors import ArtifactTooLargeError, InvalidArtifactError

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
UnsafeArtifactError = InvalidArtifactError


class _CountingReader(io.RawIOBase):
    """Decompresses gzip while counting output, so a bomb is stopped mid-stream."""

    def __init__(self, data: bytes, max_bytes: int) -> None:
        self._src = io.BytesIO(data)
        self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = b""
        self._max = max_bytes
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buf:
            if self._dec.unconsumed_tail:
                chunk = self._dec.unconsumed_tail
            else:
                chunk = self._src.read(_CHUNK)
                if not chunk:
                    self._buf = self._dec.flush()
                    if not self._buf:
                        return 0
                    break
            try:
                self._buf = self._dec.decompress(chunk, _CHUNK)
            except zlib.error as exc:
                raise UnsafeArtifactError(f"artifact is not valid gzip: {exc}") from exc
            if self._dec.eof:
                break
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.produced += n
        if self.produced > self._max:
            raise ArtifactTooLargeError(
                f"artifact decompresses to more than {self._max} bytes", limit=self._max)
        return n


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/") or "\\" in name:
        raise UnsafeArtifactError(f"absolute or non-POSIX path in artifact: {name!r}")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise UnsafeArtifactError(f"path escapes the artifact directory: {name!r}")
    return PurePosixPath(*parts)


def safe_extract(tar_gz_bytes: bytes, dest: Path, max_files: int, max_total_bytes: int) -> list[Path]:
    """Extract regular files and directories of ``tar_gz_bytes`` under ``dest``.

    Refuses (``InvalidArtifactError``, 400) traversal, absolute paths, symlinks, hard links,
    devices and FIFOs, and (``ArtifactTooLargeError``, 413) more than ``max_files`` members or
    more than ``max_total_bytes`` of file content or of decompressed tar stream.
    """
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    # The tar stream adds 512-byte headers and padding per member and pads to 10 KiB records.
    reader = _CountingReader(tar_gz_bytes, max_total_bytes + 1024 * (max_files + 1) + 20480)
    stream = io.BufferedReader(reader, buffer_size=_CHUNK)
    extracted: list[Path] = []
    total = 0
    members = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                members += 1
                if members > max_files:
                    raise ArtifactTooLargeError(f"artifact has more than {max_files} members",
                                                limit=max_files)
                rel = _safe_name(member.name)
                target = (dest / rel).resolve()
                if target != dest and dest not in target.parents:
                    raise UnsafeArtifactError(f"path escapes the artifact directory: {member.name!r}")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise UnsafeArtifactError(
                        f"artifact member {member.name!r} is not a regular file (links, devices "
                        "and FIFOs are refused)")
                total += member.size
                if total > max_total_bytes:
                    raise ArtifactTooLargeError(
                        f"artifact content exceeds {max_total_bytes} bytes", limit=max_total_bytes)
                if target.exists():
                    raise UnsafeArtifactError(f"duplicate artifact member {member.name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - isreg() members always have data
                    raise UnsafeArtifactError(f"unreadable artifact member {member.name!r}")
                with open(target, "xb") as out:
                    written = 0
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > member.size:
                            raise UnsafeArtifactError(f"member {member.name!r} overruns its size")
                        out.write(chunk)
                target.chmod(0o644)
                extracted.append(target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArtifactError(f"artifact is not a valid .tar.gz: {exc}") from exc
    return extracted
