"""A Ray head for batch work (``ray job submit``) that lives beside whatever else the machine runs.

``ray start --head`` with its defaults collides on a machine like ours: Redis holds 6379, a
platform or test session may hold Ray's other default ports (the dashboard's 8265, its agent's
52365, the client server's 10001), and ``ray stop`` stops every Ray process of every cluster on
the machine. ``start_head`` picks free ports for every listener, binds them to loopback, turns
on token auth with a token of its own, keeps its session under a short temporary directory of
its own, and records all of it in ``HCP_HOME/ray-head.json``. ``stop_head`` stops exactly the
processes of that head (found by that directory and its GCS port) and their children, the
client server and running jobs included, and nothing else.

The ``ray`` command line is run as a subprocess: this module never imports Ray.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from hcp.config import secret_file
from hcp.errors import ConfigError, ConflictError, NoClusterError, ServiceUnavailableError

log = logging.getLogger(__name__)

RECORD = "ray-head.json"
TOKEN = "ray-head.token"
# Ray's own defaults and Redis: never handed to a head even when free now.
RESERVED = frozenset({6379, 8265, 10001, 52365, 52366, 8076, 8077, 8078})
_LISTENERS = ("port", "dashboard-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
              "ray-client-server-port", "runtime-env-agent-port", "metrics-export-port",
              "node-manager-port", "object-manager-port")
WORKER_PORTS = 400  # one per worker process the head may start


@dataclass(frozen=True)
class HeadRecord:
    """Where a started head listens and what a client needs to reach it."""

    ports: dict[str, int]
    worker_ports: tuple[int, int]
    temp_dir: str
    token_path: str
    started_at: float

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.ports['port']}"

    @property
    def dashboard_url(self) -> str:
        """The address ``ray job submit --address`` and ``JobSubmissionClient`` take."""
        return f"http://127.0.0.1:{self.ports['dashboard-port']}"

    def client_env(self) -> dict[str, str]:
        """What a shell needs for ``ray job submit``/``status``/``logs``/``stop`` to this head."""
        return {"RAY_ADDRESS": self.dashboard_url, "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN_PATH": self.token_path}

    def auth_headers(self) -> dict[str, str]:
        """The head's token as an HTTP header (Ray's job SDK takes it as ``headers=``)."""
        return {"Authorization": f"Bearer {Path(self.token_path).read_text().strip()}"}

    def save(self, home: Path) -> None:
        tmp = home / f".{RECORD}.tmp"
        tmp.write_text(json.dumps({**asdict(self), "worker_ports": list(self.worker_ports)}))
        os.replace(tmp, home / RECORD)

    @classmethod
    def load(cls, home: Path) -> HeadRecord | None:
        try:
            raw = json.loads((home / RECORD).read_text())
            return cls(dict(raw["ports"]), tuple(raw["worker_ports"]), raw["temp_dir"],  # type: ignore[arg-type]
                       raw["token_path"], float(raw["started_at"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{RECORD} is unreadable; remove it after checking no head runs") from exc


def temp_dir_for(home: Path) -> Path:
    # Ray's Unix sockets live under the session directory and their paths may not exceed
    # 107 bytes: a short directory derived from HCP_HOME keeps any home usable.
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:10]
    return Path("/tmp") / f"hcp-head-{digest}"


def _free_ports(n: int) -> list[int]:
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < n:
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in RESERVED and port not in ports:
                ports.append(port)
        return ports


def _free_range(size: int, low: int = 20_000, high: int = 30_000) -> tuple[int, int]:
    """A block of ``size`` ports, each free now, below the kernel's ephemeral range."""
    rng = secrets.SystemRandom()
    for _ in range(50):
        start = rng.randrange(low, high - size)
        if all(_port_free(p) for p in range(start, start + size)):
            return start, start + size - 1
    raise ServiceUnavailableError("no free block of worker ports for a Ray head",
                                  dependency="ports")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _env(token: Path) -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0",
            # Ray on Linux turns a loopback node address into the machine's own; keep loopback.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def start_head(home: Path, ray_bin: str = "ray", num_cpus: int | None = None,
               timeout_s: float = 180) -> HeadRecord:
    """Start a head on free loopback ports with token auth; its record is saved in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    running = HeadRecord.load(home)
    if running is not None and head_processes(running):
        raise ConflictError("a Ray head already runs for this HCP_HOME",
                            address=running.dashboard_url)
    ports = dict(zip(_LISTENERS, _free_ports(len(_LISTENERS)), strict=True))
    workers = _free_range(WORKER_PORTS)
    temp = temp_dir_for(home)
    token = secret_file(home / TOKEN)
    rec = HeadRecord(ports, workers, str(temp), str(token), time.time())
    args = [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--dashboard-host",
            "127.0.0.1", "--temp-dir", str(temp), "--disable-usage-stats",
            "--min-worker-port", str(workers[0]), "--max-worker-port", str(workers[1])]
    for name, port in ports.items():
        args += [f"--{name}", str(port)]
    if num_cpus is not None:
        args += ["--num-cpus", str(num_cpus)]
    rec.save(home)  # before the start: a half-started head can still be found and stopped
    try:
        out = subprocess.run(args, env=_env(token), capture_output=True, text=True, timeout=timeout_s,
                             check=False)
        if out.returncode != 0:
            raise ServiceUnavailableError(f"ray start failed: {(out.stderr or out.stdout)[-2000:]}",
                                          dependency="ray")
        _wait_ready(rec, time.monotonic() + timeout_s)
    except (ServiceUnavailableError, subprocess.TimeoutExpired, OSError) as exc:
        stop_head(home)
        if isinstance(exc, ServiceUnavailableError):
            raise
        raise ServiceUnavailableError(f"ray start did not finish: {exc}", dependency="ray") from exc
    log.info("Ray head up at %s (GCS %s)", rec.dashboard_url, rec.gcs_address)
    return rec


def _wait_ready(rec: HeadRecord, deadline: float) -> None:
    """The job API answers (with the token) once the dashboard's job module is up."""
    headers = rec.auth_headers()
    while True:
        try:
            r = httpx.get(f"{rec.dashboard_url}/api/jobs/", timeout=5, headers=headers)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServiceUnavailableError("the Ray head's job API did not answer", dependency="ray")
        time.sleep(0.5)


def head_processes(rec: HeadRecord) -> list[psutil.Process]:
    """This head's processes and all their descendants (jobs, workers, the client server)."""
    roots: list[psutil.Process] = []
    gcs_flag = f"--address={rec.gcs_address}"
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or ())
        if rec.temp_dir in cmd or (gcs_flag in cmd and "ray" in cmd):
            roots.append(p)
    found: dict[int, psutil.Process] = {}
    for p in roots:
        found[p.pid] = p
        try:
            for c in p.children(recursive=True):
                found[c.pid] = c
        except psutil.NoSuchProcess:
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _alive(procs: list[psutil.Process]) -> Iterator[psutil.Process]:
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                yield p
        except psutil.NoSuchProcess:
            continue


def _end(procs: list[psutil.Process], grace_s: float) -> None:
    """SIGTERM each, SIGKILL what still runs after ``grace_s``, and reap."""
    for p in procs:
        try:
            p.terminate() if grace_s > 0 else p.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s or 5)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def stop_head(home: Path, grace_s: float = 15) -> int:
    """Stop this home's head (SIGTERM, then SIGKILL after ``grace_s``); processes stopped."""
    rec = HeadRecord.load(home)
    if rec is None:
        raise NoClusterError("no Ray head was started for this HCP_HOME")
    procs = head_processes(rec)
    _end(procs, grace_s)
    # Processes started while the first set was stopping (a worker being forked) go too.
    late = list(_alive(head_processes(rec)))
    _end(late, 0)
    (home / RECORD).unlink(missing_ok=True)
    return len(procs) + len(late)


def head_status(home: Path) -> dict[str, object]:
    rec = HeadRecord.load(home)
    if rec is None:
        return {"running": False}
    procs = list(_alive(head_processes(rec)))
    return {"running": bool(procs), "processes": len(procs), "address": rec.dashboard_url,
            "gcs_address": rec.gcs_address, "token_path": rec.token_path, "temp_dir": rec.temp_dir}
