"""Docker isolation mode: the wasmtime sandbox inside a locked-down container.

Defence in depth around ``WasmtimeSandbox``: the same fuel, memory and epoch limits run inside
a container with no network, a read-only root, a small tmpfs, the workdir mounted read-only,
a memory cap (cgroup; the kernel kills on overrun), a pids limit, no capabilities and no new
privileges, and a host-side wall-clock kill. Outcomes are the same ``SandboxResult``s.

No registry is reachable, so the image is built locally with ``docker import`` from a rootfs
tarball assembled from this host: the running Python (interpreter, its shared libraries and
a trimmed stdlib), the wasmtime wheel, the two sandbox modules and a tiny runner. Its tag
hashes those inputs, so it is built once per change (a few seconds) and reused.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests.exceptions
import wasmtime

from hcp.errors import ServiceUnavailableError
from hcp.notary.sandbox import base as sandbox_base
from hcp.notary.sandbox import wasm as sandbox_wasm
from hcp.notary.sandbox.base import GUEST_DIR, SandboxLimits, SandboxOutcome, SandboxResult

if TYPE_CHECKING:
    from hcp.config import Settings

log = logging.getLogger(__name__)

IMAGE_REPOSITORY = "hcp-wasm-sandbox"
_OPT = "/opt/hcp-sandbox"
_SITE = f"{_OPT}/site"
_RUNNER = f"{_OPT}/runner.py"
_MARKER = "HCP-SANDBOX-RESULT "
# Stdlib parts the runner never imports; leaving them out keeps the image small.
_STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip",
                "lib2to3", "pydoc_data", "unittest", "distutils", "sqlite3"}

_RUNNER_SOURCE = f'''\
import json, sys
sys.path.insert(0, "{_SITE}")
from pathlib import Path
from hcp.notary.sandbox.base import SandboxLimits
from hcp.notary.sandbox.wasm import WasmtimeSandbox
limits = SandboxLimits(**json.loads(sys.argv[1]))
r = WasmtimeSandbox().run(Path("{GUEST_DIR}"), limits)
print("{_MARKER}" + json.dumps({{"outcome": r.outcome.value, "score": r.score, "stdout": r.stdout,
      "duration_seconds": r.duration_seconds, "fuel_consumed": r.fuel_consumed,
      "detail": r.detail}}), flush=True)
'''


class SandboxUnavailableError(ServiceUnavailableError):
    """The sandbox infrastructure (Docker, the runner image) failed; not the miner's fault."""

    code = "sandbox_unavailable"


def _ldd(path: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


class _RootfsBuilder:
    """A tar of a minimal root filesystem; files keep their host paths so the interpreter
    finds its prefix, RUNPATH and loader exactly as on the host."""

    def __init__(self, out: io.BufferedIOBase) -> None:
        # Owned by the builder for its whole life; close() finishes the archive.
        self.tar = tarfile.open(fileobj=out, mode="w")  # noqa: SIM115
        self.seen: set[str] = set()

    def _dirs(self, arc: PurePosixPath) -> None:
        for parent in reversed(arc.parents):
            key = str(parent).lstrip("/")
            if key and key not in self.seen:
                self.seen.add(key)
                info = tarfile.TarInfo(key)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                self.tar.addfile(info)

    def dir(self, arc: str, mode: int = 0o755) -> None:
        key = arc.strip("/")
        self._dirs(PurePosixPath(key))
        self.seen.add(key)
        info = tarfile.TarInfo(key)
        info.type, info.mode = tarfile.DIRTYPE, mode
        self.tar.addfile(info)

    def file(self, host: Path, arc: str | None = None, mode: int | None = None) -> None:
        arcp = PurePosixPath(arc or str(host))
        key = str(arcp).lstrip("/")
        if key in self.seen:
            return
        self._dirs(arcp)
        self.seen.add(key)
        data = host.read_bytes()
        self.bytes(key, data, mode if mode is not None else (host.stat().st_mode & 0o755) | 0o444)

    def bytes(self, arc: str, data: bytes, mode: int = 0o644) -> None:
        key = arc.lstrip("/")
        self._dirs(PurePosixPath(key))
        self.seen.add(key)
        info = tarfile.TarInfo(key)
        info.size, info.mode = len(data), mode
        self.tar.addfile(info, io.BytesIO(data))

    def tree(self, root: Path, arc_root: str, skip: set[str] = frozenset()) -> None:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in skip)
            for name in sorted(filenames):
                host = Path(dirpath) / name
                if host.is_file():
                    self.file(host, f"{arc_root}/{host.relative_to(root)}")

    def close(self) -> None:
        self.tar.close()


def _python_paths() -> tuple[Path, Path]:
    return Path(os.path.realpath(sys.executable)), Path(os.__file__).resolve().parent


def image_tag() -> str:
    """A tag that changes whenever anything baked into the image changes."""
    exe, stdlib = _python_paths()
    h = hashlib.sha256()
    for part in (sys.version, str(exe), str(stdlib), wasmtime.__file__, _RUNNER_SOURCE):
        h.update(part.encode())
    for mod in (sandbox_base, sandbox_wasm):
        h.update(Path(mod.__file__).read_bytes())
    h.update(exe.read_bytes()[:1 << 20])
    return f"{IMAGE_REPOSITORY}:{h.hexdigest()[:16]}"


def _write_rootfs(out: io.BufferedIOBase) -> None:
    exe, stdlib = _python_paths()
    wasmtime_dir = Path(wasmtime.__file__).resolve().parent
    b = _RootfsBuilder(out)
    b.dir("/tmp", 0o1777)
    b.dir(GUEST_DIR)
    b.file(exe)
    b.tree(stdlib, str(stdlib), skip=_STDLIB_SKIP)
    b.tree(wasmtime_dir, f"{_SITE}/wasmtime")
    libs = {lib for so in [exe, *wasmtime_dir.rglob("*.so"), *(stdlib / "lib-dynload").glob("*.so")]
            for lib in _ldd(so)}
    for lib in sorted(libs):
        if lib.exists():
            b.file(lib.resolve(), str(lib))
    for pkg in ("hcp", "hcp/notary", "hcp/notary/sandbox"):
        b.bytes(f"{_SITE}/{pkg}/__init__.py", b"")
    for mod in (sandbox_base, sandbox_wasm):
        b.file(Path(mod.__file__), f"{_SITE}/hcp/notary/sandbox/{Path(mod.__file__).name}")
    b.bytes(_RUNNER, _RUNNER_SOURCE.encode())
    b.close()


_build_lock = threading.Lock()


def ensure_image(client: docker.DockerClient) -> str:
    """The runner image's tag, importing it first if the engine lacks it."""
    tag = image_tag()
    with _build_lock:
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        started = time.monotonic()
        buf = io.BytesIO()
        _write_rootfs(buf)
        repo, _, version = tag.partition(":")
        client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=version)
        log.info("built sandbox image %s (%.1f MiB) in %.1fs", tag, buf.tell() / 2**20,
                 time.monotonic() - started)
        return tag


class DockerSandbox:
    """Runs ``train.wasm`` through the wasmtime runner inside a locked-down container.

    The container's memory cap is the wasm memory limit plus ``memory_overhead_bytes`` for the
    interpreter and compiled code (or ``container_memory_bytes`` when given); the host kills
    the container ``startup_grace_seconds`` after the wall-clock limit if the inner epoch
    deadline has not already stopped it. The container runs as this process's uid:gid, so it
    can read the notary's private workdir without widening its permissions.
    """

    def __init__(self, client: docker.DockerClient | None = None, *,
                 memory_overhead_bytes: int = 256 << 20, container_memory_bytes: int | None = None,
                 pids_limit: int = 64, cpus: float = 1.0, tmpfs_bytes: int = 16 << 20,
                 startup_grace_seconds: float = 15.0) -> None:
        self._client = client
        self.memory_overhead_bytes = memory_overhead_bytes
        self.container_memory_bytes = container_memory_bytes
        self.pids_limit = pids_limit
        self.cpus = cpus
        self.tmpfs_bytes = tmpfs_bytes
        self.startup_grace_seconds = startup_grace_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> DockerSandbox:
        """The notary's docker mode. The limits themselves come per run (``SandboxLimits``
        from the ``notary_sandbox_*`` settings); the container knobs keep their defaults."""
        del settings
        return cls()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env()
            except docker.errors.DockerException as exc:
                raise SandboxUnavailableError(f"Docker Engine unreachable: {exc}") from exc
        return self._client

    def container_options(self, workdir: Path, limits: SandboxLimits) -> dict[str, Any]:
        """The ``containers.run`` keyword arguments (kept separate so tests can inspect them)."""
        cap = self.container_memory_bytes or limits.memory_bytes + self.memory_overhead_bytes
        return {
            "network_mode": "none",
            "mem_limit": cap,
            "memswap_limit": cap,  # equal to mem_limit: no swap to hide in
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={self.tmpfs_bytes}"},
            "volumes": {str(Path(workdir).resolve()): {"bind": GUEST_DIR, "mode": "ro"}},
            "working_dir": GUEST_DIR,
            "pids_limit": self.pids_limit,
            "nano_cpus": int(self.cpus * 1e9),
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "user": f"{os.getuid()}:{os.getgid()}",
            "ipc_mode": "none",
            "environment": {},
            # Which process started it: operators (and tests) can find their own containers.
            "labels": {"hcp.sandbox": "wasm", "hcp.sandbox.pid": str(os.getpid())},
            "detach": True,
        }

    def run(self, workdir: Path, limits: SandboxLimits) -> SandboxResult:
        try:
            image = ensure_image(self.client)
            exe, _ = _python_paths()
            limits_json = json.dumps({"fuel": limits.fuel, "memory_bytes": limits.memory_bytes,
                                      "timeout_seconds": limits.timeout_seconds,
                                      "max_stdout_bytes": limits.max_stdout_bytes})
            started = time.monotonic()
            container = self.client.containers.run(
                image, [str(exe), "-I", "-S", _RUNNER, limits_json],
                **self.container_options(workdir, limits))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxUnavailableError(f"cannot start the sandbox container: {exc}") from exc
        try:
            return self._finish(container, limits, started)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxUnavailableError(f"lost the sandbox container: {exc}") from exc
        finally:
            try:
                container.remove(force=True)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                log.warning("could not remove sandbox container %s: %s", container.id[:12], exc)

    def _finish(self, container: Any, limits: SandboxLimits, started: float) -> SandboxResult:
        def result(outcome: SandboxOutcome, detail: str, **kw: Any) -> SandboxResult:
            return SandboxResult(outcome, kw.get("score"), kw.get("stdout", ""),
                                 time.monotonic() - started, kw.get("fuel"), detail)

        deadline = limits.timeout_seconds + self.startup_grace_seconds
        try:
            status = container.wait(timeout=deadline)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            container.kill()
            return result(SandboxOutcome.TIMEOUT,
                          f"wall-clock limit of {limits.timeout_seconds:g}s exceeded "
                          "(container killed)")
        container.reload()
        state = container.attrs.get("State", {})
        code = int(status.get("StatusCode", state.get("ExitCode", -1)))
        if state.get("OOMKilled"):
            return result(SandboxOutcome.OUT_OF_MEMORY,
                          "container killed at its memory cap of "
                          f"{container.attrs['HostConfig'].get('Memory')} bytes")
        logs = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
        line = next((ln for ln in reversed(logs.splitlines()) if ln.startswith(_MARKER)), None)
        if line is None:
            err = container.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
            if code in (137, 139) or code < 0:  # killed by a signal the guest provoked
                return result(SandboxOutcome.TRAP, f"sandbox runner died with exit code {code}")
            raise SandboxUnavailableError(
                f"sandbox runner failed (exit {code}): {err.strip()[-500:]}")
        body = json.loads(line[len(_MARKER):])
        return result(SandboxOutcome(body["outcome"]), body["detail"], score=body["score"],
                      stdout=body["stdout"], fuel=body["fuel_consumed"])
