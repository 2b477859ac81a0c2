"""Engines and schema migrations for the relational store.

One engine per database URL per process (``engine_for``): every part of a process (an actor,
a Serve replica, the CLI) shares its pool. The schema is migrated once per launch of the
platform (``actors.topology.launch``) or by ``hcp migrate``, never by the parts themselves,
and a migration holds a lock (PostgreSQL advisory lock; a file lock beside a SQLite file) so
two launches that start at once cannot race.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError, SQLAlchemyError

from hcp.errors import ConfigError, DependencyUnavailableError, StoreError, StoreUnavailableError
from hcp.resilience.registry import Dependency, process_breakers

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
# Any constant: the advisory lock's key, the same in every process that migrates this schema.
_PG_MIGRATION_LOCK = 0x68637000


def engine_for(url: str) -> Engine:
    """This process's engine for ``url`` (created on first use, then shared)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = connect(url)
        return engine


def connect(url: str) -> Engine:
    """A new engine for ``url`` (prefer ``engine_for``); SQLite files get WAL and a busy
    timeout so actors can share them."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URL {url!r}: {exc}") from exc
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database).expanduser())
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    policy = process_breakers().get(Dependency.POSTGRES).policy
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                           connect_args={"connect_timeout": max(1, math.ceil(policy.timeout_seconds))})
    event.listen(engine, "do_connect", _through_breaker)
    return engine


def _through_breaker(dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
    """Every new server connection goes through the process's PostgreSQL breaker. A pooled
    connection the server dropped fails its pre-ping and is replaced by a new one, so a server
    that is down shows here whatever the call; while the breaker is open a store call fails
    fast with a 503 and its ``retry_after`` instead of each waiting out a connect timeout."""
    try:
        with process_breakers().guard(Dependency.POSTGRES):
            return dialect.connect(*cargs, **cparams)
    except DependencyUnavailableError as exc:
        raise StoreUnavailableError(exc.detail, retry_after=exc.retry_after,
                                    dependency=Dependency.POSTGRES.value) from None


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (its -wal and -shm files take the
    same mode): it holds the ledger, keys and claims."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError as exc:  # read-only location: SQLite will report it if it matters
        log.debug("cannot make %s private: %s", path, exc)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # loaded by what migrates, not by every reader

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` (idempotent; safe to call at every start).

    ``heads``: each area of hcp (fleet, optimizer, workloads, notary, marketplace) owns a
    migration branch rooted at ``0001_fleet``; upgrading to all heads applies every one.
    """
    from alembic import command

    cfg = alembic_config(engine)
    if revision == "heads" and _at_heads(engine, cfg):
        return  # nothing to do: no need to load and run every migration script
    try:
        with _migration_lock(engine), engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise StoreError(f"cannot migrate database at "
                         f"{engine.url.render_as_string(hide_password=True)}: {exc.orig}") from exc
    log.debug("schema at %s on %s", revision, engine.url.render_as_string(hide_password=True))


_HEADS: frozenset[str] | None = None


def _at_heads(engine: Engine, cfg: Config) -> bool:
    """Whether the schema is already at every branch head (a cheap read, no Alembic run)."""
    global _HEADS
    if _HEADS is None:
        from alembic.script import ScriptDirectory

        _HEADS = frozenset(ScriptDirectory.from_config(cfg).get_heads())
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except (OperationalError, ProgrammingError):
        return False  # a fresh database: no version table yet
    return frozenset(r[0] for r in rows) == _HEADS


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one database across processes."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session], what: str) -> Iterator[Session]:
    """A session of ``factory`` (a ``sessionmaker``) in one transaction: committed on leaving,
    rolled back on an error; a database failure surfaces as ``StoreError`` naming ``what`` and
    the failure's type only (never its SQL), typed errors pass through."""
    try:
        with factory.begin() as s:
            yield s
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} failed: {type(exc).__name__}") from exc
