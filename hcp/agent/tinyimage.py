"""A tiny real image built offline from this host's own shell, for tests, ``bench.agent`` and
a provider's first check of its node (``hcp agent selftest``).

No registry is reachable, so (as the notary's sandbox image) it is a root filesystem tarball
assembled from host files and handed to ``docker import``: ``sh`` (dash), ``sleep``, ``cat``
and the C library they link. About 2.5 MB; the same host builds the same layer.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

TOOLS = ("sh", "sleep", "cat")


def _ldd(path: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
    return [Path(m.group(1)) for m in re.finditer(r"(/\S+) \(0x", out)]


def rootfs() -> bytes:
    files: dict[str, Path] = {}
    for tool in TOOLS:
        found = shutil.which("dash" if tool == "sh" else tool) or shutil.which(tool)
        if found is None:
            raise FileNotFoundError(f"this host has no {tool} to build the tiny image from")
        exe = Path(os.path.realpath(found))
        files[f"bin/{tool}"] = exe
        for lib in _ldd(exe):
            files.setdefault(str(lib).lstrip("/"), Path(os.path.realpath(lib)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = {"tmp", "data"}
        for arc in files:
            dirs.update(str(p) for p in PurePosixPath(arc).parents if str(p) != ".")
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, 0
            tar.addfile(info)
        for arc, host in sorted(files.items()):
            data = host.read_bytes()
            info = tarfile.TarInfo(arc)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_tiny_image(client: Any, reference: str,
                     command: str = "echo hello from hcp; sleep 1; echo bye") -> str:
    """``docker import`` the tiny root filesystem as ``reference`` with ``sh -c command``;
    answers the image ID."""
    repo, _, tag = reference.partition(":")
    client.api.import_image_from_data(
        rootfs(), repository=repo, tag=tag or "latest",
        changes=[f"CMD {_json_list(['/bin/sh', '-c', command])}", "WORKDIR /tmp"])
    return str(client.images.get(reference).id)


def _json_list(items: list[str]) -> str:
    import json

    return json.dumps(items)
