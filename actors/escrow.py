"""EscrowLedgerActor: the one owner of the marketplace's escrow ledger, as a Ray actor.

A thin shell over an ``EscrowBackend`` (SQL by default, the chain when configured). Every
operation is idempotent by job id / op id and all state lives in the ledger (database or
chain), so a restarted actor simply rebuilds its backend and a retried call moves money at
most once; that is why its options allow Ray to retry tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ray

from actors.handles import get
from actors.options import escrow_actor_name, escrow_actor_options
from hcp.config import Settings
from hcp.errors import DeviceUnavailableError, ServiceUnavailableError
from hcp.marketplace.backends import build_escrow_backend
from hcp.marketplace.escrow_backend import EscrowBackend, Settlement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Books:
    """The ledger read in one call: conservation says supply == sum(balances) + escrowed."""

    total_supply: int
    balances: dict[str, int]
    escrowed: int

    @property
    def residual(self) -> int:
        return self.total_supply - sum(self.balances.values()) - self.escrowed


class _EscrowLedger:
    def __init__(self, settings: Settings, backend: EscrowBackend | None = None) -> None:
        self._backend = backend or build_escrow_backend(settings)
        self.platform_account = self._backend.platform_account
        log.info("escrow ledger up (%s)", type(self._backend).__name__)

    def platform(self) -> str:
        return self.platform_account

    def backend_kind(self) -> str:
        return type(self._backend).__name__

    def total_supply(self) -> int:
        return self._backend.total_supply()

    def balance_of(self, account: str) -> int:
        return self._backend.balance_of(account)

    def accounts(self) -> list[str]:
        return self._backend.accounts()

    def escrowed_total(self) -> int:
        return self._backend.escrowed_total()

    def locked_for(self, job_id: str) -> int:
        return self._backend.locked_for(job_id)

    def books(self) -> Books:
        """Supply, every balance and the escrowed total read together (for invariant checks)."""
        accounts = self._backend.accounts()
        return Books(self._backend.total_supply(),
                     {a: self._backend.balance_of(a) for a in accounts},
                     self._backend.escrowed_total())

    def mint(self, account: str, amount: int, op_id: str) -> None:
        self._backend.mint(account, amount, op_id)

    def transfer(self, sender: str, recipient: str, amount: int, op_id: str) -> None:
        self._backend.transfer(sender, recipient, amount, op_id)

    def lock(self, job_id: str, renter: str, provider: str, amount: int) -> None:
        self._backend.lock(job_id, renter, provider, amount)

    def partial_release(self, job_id: str, amount: int, op_id: str) -> Settlement:
        return self._backend.partial_release(job_id, amount, op_id)

    def release(self, job_id: str, actual_cost: int) -> Settlement:
        return self._backend.release(job_id, actual_cost)

    def refund(self, job_id: str) -> Settlement:
        return self._backend.refund(job_id)

    def split(self, job_id: str, provider_bps: int) -> Settlement:
        return self._backend.split(job_id, provider_bps)


EscrowLedgerActor = ray.remote(_EscrowLedger)


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

    def _call(self, method: str, *args: Any) -> Any:
        h = self._handle()
        try:
            return get(getattr(h, method).remote(*args), "the escrow ledger", self._timeout)
        except DeviceUnavailableError as exc:
            if self._settings is not None:
                self._h = None  # look it up again: it may have been restarted under the name
            raise ServiceUnavailableError(exc.detail) from None

    @property
    def platform_account(self) -> str:
        if self._platform is None:
            self._platform = str(self._call("platform"))
        return self._platform

    def total_supply(self) -> int:
        return int(self._call("total_supply"))

    def balance_of(self, account: str) -> int:
        return int(self._call("balance_of", account))

    def accounts(self) -> list[str]:
        return list(self._call("accounts"))

    def escrowed_total(self) -> int:
        return int(self._call("escrowed_total"))

    def locked_for(self, job_id: str) -> int:
        return int(self._call("locked_for", job_id))

    def mint(self, account: str, amount: int, op_id: str) -> None:
        self._call("mint", account, amount, op_id)

    def transfer(self, sender: str, recipient: str, amount: int, op_id: str) -> None:
        self._call("transfer", sender, recipient, amount, op_id)

    def lock(self, job_id: str, renter: str, provider: str, amount: int) -> None:
        self._call("lock", job_id, renter, provider, amount)

    def partial_release(self, job_id: str, amount: int, op_id: str) -> Settlement:
        return self._call("partial_release", job_id, amount, op_id)  # type: ignore[no-any-return]

    def release(self, job_id: str, actual_cost: int) -> Settlement:
        return self._call("release", job_id, actual_cost)  # type: ignore[no-any-return]

    def refund(self, job_id: str) -> Settlement:
        return self._call("refund", job_id)  # type: ignore[no-any-return]

    def split(self, job_id: str, provider_bps: int) -> Settlement:
        return self._call("split", job_id, provider_bps)  # type: ignore[no-any-return]
