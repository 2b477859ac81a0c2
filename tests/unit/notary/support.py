"""Shared test helpers for the notary: artifacts, signing miners, a wired notary, Redis."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from nacl.signing import SigningKey

from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.notary.canonical import jcs_bytes, legacy_bytes
from hcp.notary.ledger import TaskRecord
from hcp.notary.metrics import PrometheusNotaryMetrics
from hcp.notary.pool import LocalSandboxPool
from hcp.notary.sandbox.wasm import WasmtimeSandbox
from hcp.notary.service import NotaryService, build_service
from hcp.notary.storage import sha256_ref
from hcp.store.db import connect, migrate

SECRET = "x" * 40
DATASET = b"x,y\n1,2\n3,4\n"

_SANDBOX: WasmtimeSandbox | None = None


def shared_sandbox() -> WasmtimeSandbox:
    """One engine for the whole test run (its epoch ticker thread lives as long as the process)."""
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = WasmtimeSandbox()
    return _SANDBOX


def make_artifact(wasm: bytes, hyperparameters: dict[str, Any] | None = None,
                  extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    files = {"train.wasm": wasm}
    if hyperparameters is not None:
        files["hyperparameters.json"] = json.dumps(hyperparameters).encode()
    files.update(extra or {})
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Miner:
    key: SigningKey = field(default_factory=SigningKey.generate)
    miner_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def public_hex(self) -> str:
        return self.key.verify_key.encode().hex()

    def payload(self, artifact: bytes, score: float, task_id: str = "task-1",
                **overrides: Any) -> dict[str, Any]:
        p = {"miner_id": self.miner_id, "task_id": task_id, "claimed_score": score,
             "artifact_hash": sha256_ref(artifact),
             "timestamp": datetime.now(UTC).isoformat(), "nonce": str(uuid.uuid4())}
        p.update(overrides)
        return p

    def sign(self, payload: dict[str, Any], canonical: str = "jcs") -> str:
        """Sign as the miner SDK does (RFC 8785), or as clients before it did (``legacy``)."""
        message = jcs_bytes(payload) if canonical == "jcs" else legacy_bytes(payload)
        return self.key.sign(message).signature.hex()

    def form(self, artifact: bytes, score: float, canonical: str = "jcs",
             **overrides: Any) -> tuple[dict, dict]:
        payload = self.payload(artifact, score, **overrides)
        data = {"payload": json.dumps(payload), "signature": self.sign(payload, canonical)}
        files = {"artifact": ("artifact.tar.gz", artifact, "application/gzip")}
        return data, files


def notary_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"home": home, "jwt_secret": SECRET,
                              "database_url": f"sqlite:///{home / 'hcp.db'}",
                              "notary_sandbox_workers": 2, "notary_sandbox_queue": 64,
                              "notary_sandbox_memory_bytes": 32 << 20,
                              "notary_task_cache_seconds": 0.0}
    values.update(overrides)
    return Settings(**values)


_TEMPLATE: Path | None = None


def _migrated_sqlite(target: Path) -> None:
    """Copy a once-migrated SQLite file: running Alembic per test costs about a second."""
    global _TEMPLATE
    if _TEMPLATE is None:
        tmp = Path(tempfile.mkdtemp(prefix="hcp-notary-tpl-")) / "template.db"
        engine = connect(f"sqlite:///{tmp}")
        migrate(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _TEMPLATE = tmp
    shutil.copyfile(_TEMPLATE, target)


def make_service(settings: Settings, redis_client: Any | None = None,
                 pool: Any | None = None) -> NotaryService:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        _migrated_sqlite(Path(url.removeprefix("sqlite:///")))
    engine = connect(url)
    migrate(engine)
    pool = pool or LocalSandboxPool(shared_sandbox(), settings.notary.sandbox_workers,
                                    settings.notary.sandbox_queue)
    return build_service(settings, engine, pool=pool, metrics=PrometheusNotaryMetrics(),
                         redis_client=redis_client)


def add_task(svc: NotaryService, task_id: str = "task-1", threshold: float = 0.9,
             timeout: float = 0.5, reward: int = 1000) -> TaskRecord:
    ref = svc.datasets.put(DATASET)
    now = datetime.now(UTC)
    task = svc.ledger.create_task(TaskRecord(task_id, "accuracy", threshold, ref, timeout,
                                             reward, now, now + timedelta(days=1), "active"))
    svc.tasks.invalidate()
    return task


def register(svc: NotaryService, miner: Miner, stake: int = 10_000) -> None:
    svc.ledger.register_miner(miner.miner_id, miner.public_hex, stake, datetime.now(UTC))


def admin_headers(settings: Settings) -> dict[str, str]:
    token = TokenService.from_settings(settings).issue("root", Role.ADMIN)
    return {"Authorization": f"Bearer {token}"}


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notary")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of our own on a free port, which a test may kill and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
