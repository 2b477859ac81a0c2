"""IndexerActor: follows the contracts' events into the store in the background.

A thin shell over ``hcp.marketplace.chain.indexer.ChainIndexer``. The cursor lives in the store, so a
restarted actor picks up where the last committed batch ended. It needs a chain other
processes can reach (``HCP_CHAIN_RPC_URL``) and a deployment file (``HCP_CHAIN_DEPLOYMENT``):
the in-process py-evm chain lives inside one Python process and cannot be followed from here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray

from actors.metrics_sink import configure_breakers
from actors.options import indexer_actor_options
from hcp.config import Settings
from hcp.errors import ConfigError
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.deploy import Contracts, Deployment
from hcp.marketplace.chain.indexer import ChainIndexer
from hcp.observability.stores import record_chain
from hcp.store.db import engine_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexerStatus:
    running: bool
    cursor_block: int | None
    cursor_hash: str | None
    events_indexed: int
    polls: int
    last_error: str | None
    pid: int


class _Indexer:
    def __init__(self, settings: Settings, autostart: bool = True) -> None:
        if not settings.chain.rpc_url or settings.chain.deployment is None:
            raise ConfigError("the indexer actor needs HCP_CHAIN_RPC_URL and HCP_CHAIN_DEPLOYMENT")
        configure_breakers(settings)
        self._settings = settings
        self._indexer: ChainIndexer | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events = 0
        self._polls = 0
        self._last_error: str | None = None
        self._thread: threading.Thread | None = None
        if autostart:
            self.resume()

    def _get(self) -> ChainIndexer:
        if self._indexer is None:
            s = self._settings
            client = ChainClient.from_url(s.chain.rpc_url or "", s.chain.receipt_timeout_seconds)
            contracts = Contracts.bind(client, Deployment.load(s.chain.deployment))  # type: ignore[arg-type]
            engine = engine_for(s.resolved_database_url)
            self._indexer = ChainIndexer(client, contracts, engine, confirmations=s.chain.confirmations,
                                         reorg_window=s.chain.reorg_window)
        return self._indexer

    def poll_once(self) -> IndexerStatus:
        """Catch up with the head now; returns the status afterwards."""
        with self._lock:
            self._events += self._get().run_until_head()
            self._polls += 1
        return self.status()

    def status(self) -> IndexerStatus:
        cursor = self._indexer.cursor() if self._indexer is not None else (None, None)
        return IndexerStatus(self._thread is not None and self._thread.is_alive(), cursor[0],
                             cursor[1], self._events, self._polls, self._last_error, os.getpid())

    def resume(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="chain-indexer", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        from actors.metrics_sink import RaySink

        sink = RaySink()
        while not self._stop.is_set():
            try:
                self.poll_once()
                self._last_error = None
            except Exception as exc:  # noqa: BLE001 - keep following: node or store may come back
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.warning("indexer poll failed: %s", self._last_error)
            self._record(sink)
            self._stop.wait(self._settings.chain.poll_seconds)

    def _record(self, sink: Any) -> None:
        try:
            indexer = self._get()
            head: int | None = indexer.client.block_number()
        except Exception:  # the node (or its contracts) did not answer: it is down to Prometheus
            head, indexer = None, None
        try:
            record_chain(sink, head, indexer.cursor()[0] if indexer is not None else None)
        except Exception:
            log.warning("chain metrics failed", exc_info=True)


IndexerActor = ray.remote(_Indexer)


def launch_indexer(settings: Settings) -> Any:
    handle = IndexerActor.options(**indexer_actor_options(settings)).remote(settings)
    ray.get(handle.status.remote())  # surfaces constructor errors here
    return handle


def wait_for_block(handle: Any, block: int, timeout: float = 60.0) -> IndexerStatus:
    """Block until the actor's cursor reaches ``block`` (tests, CLI)."""
    deadline = time.monotonic() + timeout
    while True:
        st = ray.get(handle.status.remote())
        if st.cursor_block is not None and st.cursor_block >= block:
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"indexer at {st.cursor_block}, wanted {block}: {st.last_error}")
        time.sleep(0.2)
