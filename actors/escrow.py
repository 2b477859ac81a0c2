"""EscrowLedgerActor: the one owner of the marketplace's escrow ledger, as a Ray actor.

A thin shell over an ``EscrowBackend`` (SQL by default, the chain when configured). Every
operation is idempotent by job id / op id and all state lives in the ledger (database or
chain), so a restarted actor simply rebuilds its backend and a retried call moves money at
most once; that is why its options allow Ray to retry tasks.

The ledger's operations are listed once (``LEDGER_OPS``): the actor exposes each as a method
that forwards to its backend, and ``RemoteEscrow`` (an ``EscrowBackend`` for any process)
forwards each to the actor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from actors.handles import get
from actors.metrics_sink import METRICS_SECONDS, configure_breakers
from actors.options import escrow_actor_name, escrow_actor_options
from hcp.config import Settings
from hcp.errors import DeviceUnavailableError, ServiceUnavailableError
from hcp.marketplace.backends import build_escrow_backend
from hcp.marketplace.escrow_backend import EscrowBackend
from hcp.observability.marketplace import MarketplaceRecorder
from hcp.observability.recorders import start_recorders
from hcp.observability.stores import DbConnections

log = logging.getLogger(__name__)

# Every operation of ``EscrowBackend``: reads, money moves, stake.
LEDGER_OPS = ("total_supply", "balance_of", "accounts", "escrowed_total", "locked_for",
              "staked_total", "stake_of", "mint", "transfer", "lock", "partial_release",
              "release", "refund", "split", "stake", "request_unstake", "withdraw_stake",
              "slash")


@dataclass(frozen=True)
class Books:
    """The ledger read in one call: conservation says
    supply == sum(balances) + escrowed + staked."""

    total_supply: int
    balances: dict[str, int]
    escrowed: int
    staked: int = 0

    @property
    def residual(self) -> int:
        return self.total_supply - sum(self.balances.values()) - self.escrowed - self.staked


class _EscrowLedger:
    def __init__(self, settings: Settings, backend: EscrowBackend | None = None) -> None:
        configure_breakers(settings)  # the chain escrow's RPC goes through this process's breaker
        self._backend = backend or build_escrow_backend(settings)
        self.platform_account = self._backend.platform_account
        # Ray runs one call at a time (max_concurrency 1); the metrics thread reads the books
        # between calls, never in the middle of one.
        self._lock = threading.Lock()
        log.info("escrow ledger up (%s)", type(self._backend).__name__)

    def platform(self) -> str:
        return self.platform_account

    def backend_kind(self) -> str:
        return type(self._backend).__name__

    def books(self) -> Books:
        """Supply, every balance, the escrowed and staked totals read together."""
        b = self._backend
        with self._lock:
            accounts = b.accounts()
            return Books(b.total_supply(), {a: b.balance_of(a) for a in accounts},
                         b.escrowed_total(), b.staked_total())

    def pid(self) -> int:
        import os

        return os.getpid()


def _to_backend(name: str) -> Callable[..., Any]:
    def op(self: _EscrowLedger, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return getattr(self._backend, name)(*args, **kwargs)

    op.__name__ = name
    op.__doc__ = f"``EscrowBackend.{name}`` on the ledger this actor owns."
    return op


for _name in LEDGER_OPS:
    setattr(_EscrowLedger, _name, _to_backend(_name))


class _RecordedLedger(_EscrowLedger):
    """The ledger as the platform runs it: with the marketplace's metrics recorded from its
    books and the job log every ``METRICS_SECONDS`` (hcp.observability.marketplace), and with
    the chain escrow its chain client's transactions as they are sent."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from actors.metrics_sink import RaySink
        from hcp.store import engine_for

        def books() -> tuple[int, int]:
            b = self.books()
            return b.escrowed, b.residual

        engine, sink = engine_for(settings.resolved_database_url), RaySink()
        if settings.marketplace.escrow_backend == "chain":
            from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend

            # This process sends the platform's transactions: their pending count and
            # send-to-receipt time come from its client.
            if isinstance(self._backend, ChainEscrowBackend):
                self._backend.client.sink = sink
        # The one singleton with the platform's engine records the database's connections too.
        recorders = [MarketplaceRecorder(engine, books, settings.marketplace.escrow_backend, sink).record,
                     DbConnections(engine, sink).record]
        self._metrics_stop = start_recorders(recorders, METRICS_SECONDS)


EscrowLedgerActor = ray.remote(_RecordedLedger)


def launch_escrow_ledger(settings: Settings) -> Any:
    """Start (or find) the named ledger actor and wait until its backend is up."""
    handle = EscrowLedgerActor.options(**escrow_actor_options(settings)).remote(settings)
    ray.get(handle.backend_kind.remote())
    return handle


def find_escrow_ledger(settings: Settings) -> Any:
    return ray.get_actor(escrow_actor_name(), namespace=settings.ray.namespace)


class RemoteEscrow:
    """An ``EscrowBackend`` that forwards to the ledger actor, so the marketplace service can
    run anywhere (a Serve replica) while one actor owns the books.

    The actor is found by name on first use (no Ray call at construction) and found again
    after it restarts; its typed errors come back as themselves (``actors.handles``). Every
    operation is idempotent by job id or op id, so Ray's retry of a call whose actor died
    mid-way moves money at most once.
    """

    def __init__(self, settings: Settings | None = None, handle: Any = None,
                 timeout_s: float = 60.0) -> None:
        self._settings = settings
        self._h = handle
        self._timeout = timeout_s
        self._platform: str | None = None

    def _handle(self) -> Any:
        if self._h is None:
            if self._settings is None:
                raise ServiceUnavailableError("no escrow ledger actor to talk to")
            try:
                self._h = find_escrow_ledger(self._settings)
            except ValueError:
                raise ServiceUnavailableError("the escrow ledger is not running") from None
        return self._h

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        h = self._handle()
        try:
            return get(getattr(h, method).remote(*args, **kwargs), "the escrow ledger",
                       self._timeout)
        except DeviceUnavailableError as exc:
            if self._settings is not None:
                self._h = None  # look it up again: it may have been restarted under the name
            raise ServiceUnavailableError(exc.detail) from None

    @property
    def platform_account(self) -> str:
        if self._platform is None:
            self._platform = str(self._call("platform"))
        return self._platform

    def books(self) -> Books:
        return self._call("books")  # type: ignore[no-any-return]


def _to_actor(name: str) -> Callable[..., Any]:
    def op(self: RemoteEscrow, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    op.__name__ = name
    op.__doc__ = f"``EscrowBackend.{name}`` through the ledger actor."
    return op


for _name in LEDGER_OPS:
    setattr(RemoteEscrow, _name, _to_actor(_name))
