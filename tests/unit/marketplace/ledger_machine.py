"""A hypothesis state machine that drives any EscrowBackend against an exact model.

Reused for the SQL ledger (here) and the chain ledger (when ``hcp.marketplace.chain`` is importable).
A harness supplies the backend and how to "crash" it: ``restart()`` rebuilds the backend from
the same database or chain (an actor killed between steps), ``faulty()`` returns a backend
whose next write fails inside its transaction (``None`` when the backend cannot inject), and
``advance(seconds)`` moves the backend's clock forward (the SQL ledger's clock, the chain's
block time). After every step: total supply == Σ balances + escrowed + staked, and every
number (balances, escrows, each provider's bonded and unbonding stake) equals the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hcp.errors import HcpError
from hcp.marketplace.escrow_backend import BPS, UNBONDING_SECONDS, EscrowBackend, split_payment


class Harness(Protocol):
    accounts: list[str]

    def backend(self) -> EscrowBackend: ...
    def restart(self) -> EscrowBackend: ...
    def faulty(self) -> EscrowBackend | None: ...
    def advance(self, seconds: int) -> None: ...
    def close(self) -> None: ...


class InjectedFault(Exception):
    """Raised inside a ledger transaction to simulate a crash before commit."""


@dataclass
class ModelEscrow:
    renter: str
    provider: str
    remaining: int
    paid: int = 0
    settled: bool = False
    settled_by: str = ""


@dataclass
class ModelStake:
    bonded: int = 0
    unbonding: int = 0
    matured: bool = False  # the unbonding period has passed since the last unstake request


@dataclass
class Model:
    supply: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    escrows: dict[str, ModelEscrow] = field(default_factory=dict)
    stakes: dict[str, ModelStake] = field(default_factory=dict)

    def stake(self, a: str) -> ModelStake:
        return self.stakes.setdefault(a, ModelStake())

    def bal(self, a: str) -> int:
        return self.balances.get(a, 0)

    def add(self, a: str, amount: int) -> None:
        self.balances[a] = self.bal(a) + amount

    def pay(self, esc: ModelEscrow, pay: int, refund: int, platform: str) -> None:
        to_provider, to_platform = split_payment(pay)
        self.add(esc.provider, to_provider)
        self.add(platform, to_platform)
        self.add(esc.renter, refund)
        esc.remaining -= pay + refund
        esc.paid += pay


AMOUNTS = st.one_of(st.integers(1, 10**6), st.integers(1, 10**21), st.just(10**19))


def make_machine(harness_factory: Any, use_faults: bool = True) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            self.h: Harness = harness_factory()
            self.b = self.h.backend()
            # Start from whatever the books already hold (a chain shared by several examples).
            self.m = Model(supply=self.b.total_supply(),
                           balances={a: self.b.balance_of(a) for a in self.b.accounts()})
            self.base_escrowed = self.b.escrowed_total()
            stakes = {a: self.b.stake_of(a) for a in self.h.accounts}
            if any(st.unbonding for st in stakes.values()):
                self.h.advance(UNBONDING_SECONDS + 1)  # left by an earlier sequence: matured now
            self.m.stakes = {a: ModelStake(st.bonded, st.unbonding, True) for a, st in stakes.items()}
            self.base_staked = self.b.staked_total() - sum(st.total for st in stakes.values())
            self.prefix = getattr(self.h, "job_prefix", "")
            self.n = 0
            self.last: tuple[str, tuple[Any, ...]] | None = None

        def teardown(self) -> None:
            if hasattr(self, "h"):
                self.h.close()

        def _key(self) -> str:
            self.n += 1
            return f"{self.prefix}op{self.n}"

        def _call(self, name: str, *args: Any) -> Any:
            result = getattr(self.b, name)(*args)
            self.last = (name, args)
            return result

        @property
        def platform(self) -> str:
            return self.b.platform_account

        # -- rules -------------------------------------------------------------------
        @rule(who=st.sampled_from(["a", "b", "c"]), amount=AMOUNTS)
        def mint(self, who: str, amount: int) -> None:
            acct = self.h.accounts[["a", "b", "c"].index(who)]
            self._call("mint", acct, amount, self._key())
            self.m.supply += amount
            self.m.add(acct, amount)

        @rule(src=st.integers(0, 2), dst=st.integers(0, 2), amount=AMOUNTS)
        def transfer(self, src: int, dst: int, amount: int) -> None:
            a, b = self.h.accounts[src], self.h.accounts[dst]
            if a == b:
                return
            if amount > self.m.bal(a):
                self._refused(lambda: self.b.transfer(a, b, amount, self._key()))
                return
            self._call("transfer", a, b, amount, self._key())
            self.m.add(a, -amount)
            self.m.add(b, amount)

        @rule(renter=st.integers(0, 2), provider=st.integers(0, 2), amount=AMOUNTS)
        def lock(self, renter: int, provider: int, amount: int) -> None:
            r, p = self.h.accounts[renter], self.h.accounts[provider]
            if r == p:
                return
            job = f"{self.prefix}job{self.n}-{len(self.m.escrows)}"
            self.n += 1
            if amount > self.m.bal(r):
                self._refused(lambda: self.b.lock(job, r, p, amount))
                return
            self._call("lock", job, r, p, amount)
            self.m.add(r, -amount)
            self.m.escrows[job] = ModelEscrow(r, p, amount)

        def _open(self) -> list[str]:
            return sorted(j for j, e in self.m.escrows.items() if not e.settled)

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data(), frac=st.integers(0, BPS))
        def partial_release(self, data: st.DataObject, frac: int) -> None:
            job = data.draw(st.sampled_from(self._open()))
            esc = self.m.escrows[job]
            amount = esc.remaining * frac // BPS
            if amount == 0:
                return
            s = self._call("partial_release", job, amount, self._key())
            self.m.pay(esc, amount, 0, self.platform)
            assert s.remaining_locked == esc.remaining

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data(), frac=st.integers(0, BPS))
        def release(self, data: st.DataObject, frac: int) -> None:
            job = data.draw(st.sampled_from(self._open()))
            esc = self.m.escrows[job]
            due = esc.remaining * frac // BPS
            s = self._call("release", job, esc.paid + due)
            assert (s.to_provider + s.to_platform, s.refunded) == (due, esc.remaining - due)
            self.m.pay(esc, due, esc.remaining - due, self.platform)
            esc.settled, esc.settled_by = True, "release"

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data())
        def refund(self, data: st.DataObject) -> None:
            job = data.draw(st.sampled_from(self._open()))
            esc = self.m.escrows[job]
            s = self._call("refund", job)
            assert s.refunded == esc.remaining
            self.m.pay(esc, 0, esc.remaining, self.platform)
            esc.settled, esc.settled_by = True, "refund"

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data(), bps=st.sampled_from([0, 5000, 10000, 1, 9999, 3333]))
        def split(self, data: st.DataObject, bps: int) -> None:
            job = data.draw(st.sampled_from(self._open()))
            esc = self.m.escrows[job]
            pay = esc.remaining * bps // BPS
            self._call("split", job, bps)
            self.m.pay(esc, pay, esc.remaining - pay, self.platform)
            esc.settled, esc.settled_by = True, "split"

        # -- stake ---------------------------------------------------------------------
        @rule(who=st.integers(0, 2), amount=AMOUNTS)
        def stake(self, who: int, amount: int) -> None:
            p = self.h.accounts[who]
            if amount > self.m.bal(p):
                self._refused(lambda: self.b.stake(p, amount, self._key()))
                return
            state = self._call("stake", p, amount, self._key())
            self.m.add(p, -amount)
            self.m.stake(p).bonded += amount
            assert (state.bonded, state.unbonding) == (self.m.stake(p).bonded, self.m.stake(p).unbonding)

        @rule(who=st.integers(0, 2), frac=st.integers(0, BPS), over=st.booleans())
        def request_unstake(self, who: int, frac: int, over: bool) -> None:
            p = self.h.accounts[who]
            ms = self.m.stake(p)
            if over:
                self._refused(lambda: self.b.request_unstake(p, ms.bonded + 1, self._key()))
                return
            amount = ms.bonded * frac // BPS
            if amount == 0:
                return
            state = self._call("request_unstake", p, amount, self._key())
            ms.bonded -= amount
            ms.unbonding += amount
            ms.matured = False
            assert state.release_at is not None and (state.bonded, state.unbonding) == (ms.bonded, ms.unbonding)

        @rule(who=st.integers(0, 2))
        def withdraw_stake(self, who: int) -> None:
            p = self.h.accounts[who]
            ms = self.m.stake(p)
            if ms.unbonding == 0 or not ms.matured:
                self._refused(lambda: self.b.withdraw_stake(p, self._key()))
                return
            assert self._call("withdraw_stake", p, self._key()) == ms.unbonding
            self.m.add(p, ms.unbonding)
            ms.unbonding = 0

        @rule()
        def unbonding_period_passes(self) -> None:
            self.h.advance(UNBONDING_SECONDS + 1)
            for ms in self.m.stakes.values():
                ms.matured = True

        @rule(who=st.integers(0, 2), amount=AMOUNTS, data=st.data(), to_job=st.booleans())
        def slash(self, who: int, amount: int, data: st.DataObject, to_job: bool) -> None:
            p = self.h.accounts[who]
            jobs = sorted(j for j, e in self.m.escrows.items() if e.provider == p)
            job = data.draw(st.sampled_from(jobs)) if to_job and jobs else None
            beneficiary = self.m.escrows[job].renter if job else self.platform
            result = self._call("slash", p, amount, self._key(), job)
            ms = self.m.stake(p)
            from_bonded = min(amount, ms.bonded)
            taken = from_bonded + min(amount - from_bonded, ms.unbonding)
            ms.unbonding -= taken - from_bonded
            ms.bonded -= from_bonded
            self.m.add(beneficiary, taken)
            assert (result.amount, result.beneficiary) == (taken, beneficiary)

        @precondition(lambda self: bool(self.m.escrows))
        @rule(who=st.integers(0, 2), data=st.data())
        def slash_naming_another_providers_job_refused(self, who: int, data: st.DataObject) -> None:
            p = self.h.accounts[who]
            others = sorted(j for j, e in self.m.escrows.items() if e.provider != p)
            if others:
                job = data.draw(st.sampled_from(others))
                self._refused(lambda: self.b.slash(p, 1, self._key(), job))

        @precondition(lambda self: any(e.settled for e in self.m.escrows.values()))
        @rule(data=st.data())
        def settle_settled_refused(self, data: st.DataObject) -> None:
            """A second, different settlement of a settled escrow is refused (a repeat is a retry)."""
            job = data.draw(st.sampled_from(sorted(j for j, e in self.m.escrows.items() if e.settled)))
            if self.m.escrows[job].settled_by == "refund":
                self._refused(lambda: self.b.release(job, 1))
            else:
                self._refused(lambda: self.b.refund(job))

        @precondition(lambda self: self.last is not None)
        @rule()
        def retry_last(self) -> None:
            """The caller never saw the answer (crash after commit) and retries: nothing moves."""
            assert self.last is not None
            name, args = self.last
            getattr(self.b, name)(*args)

        @rule()
        def crash_and_restart(self) -> None:
            self.b = self.h.restart()

        @rule(amount=AMOUNTS, which=st.sampled_from(["mint", "lock", "refund", "stake", "slash"]))
        def failing_transaction(self, amount: int, which: str) -> None:
            if not use_faults:
                return
            fb = self.h.faulty()
            if fb is None:
                return
            a, b = self.h.accounts[0], self.h.accounts[1]
            try:
                if which == "mint":
                    fb.mint(a, amount, self._key())
                elif which == "lock" and self.m.bal(a) > 0:
                    fb.lock(f"{self.prefix}faulty{self.n}", a, b, self.m.bal(a))
                elif which == "refund" and self._open():
                    fb.refund(self._open()[0])
                elif which == "stake" and self.m.bal(a) > 0:
                    fb.stake(a, self.m.bal(a), self._key())
                elif which == "slash":
                    fb.slash(a, amount, self._key())
                else:
                    return
            except InjectedFault:
                pass
            else:
                raise AssertionError("the injected fault did not fire")
            self.b = self.h.restart()

        def _refused(self, fn: Any) -> None:
            try:
                fn()
            except HcpError:
                return
            raise AssertionError("the ledger accepted an operation it must refuse")

        # -- invariants --------------------------------------------------------------
        @invariant()
        def books_balance(self) -> None:
            if not hasattr(self, "b"):
                return
            supply = self.b.total_supply()
            accounts = self.b.accounts()
            balances = {a: self.b.balance_of(a) for a in accounts}
            escrowed = self.b.escrowed_total()
            staked = self.b.staked_total()
            assert supply == sum(balances.values()) + escrowed + staked
            assert supply == self.m.supply
            assert staked == self.base_staked + sum(s.bonded + s.unbonding for s in self.m.stakes.values())
            for a, ms in self.m.stakes.items():
                state = self.b.stake_of(a)
                assert (state.bonded, state.unbonding) == (ms.bonded, ms.unbonding), a
            for a in set(balances) | set(self.m.balances):
                assert balances.get(a, 0) == self.m.bal(a), a
            assert escrowed == self.base_escrowed + sum(e.remaining for e in self.m.escrows.values())
            for job, e in self.m.escrows.items():
                assert self.b.locked_for(job) == e.remaining

    return LedgerMachine
