"""Economics of honesty: what a failed or verified claim does to a miner's stake and balance.

A first timeout is treated as bad luck (a slow machine, a tight limit): a warning, no slash.
Every other failure, and any timeout after a warning, slashes, and each slash doubles the
rate of the previous one (``base_bps``, 2x, 4x ... of the remaining stake, capped at all of it),
so a miner who keeps submitting bad claims loses its stake quickly while an honest miner who
hit one timeout loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from hcp.notary.sandbox.base import SandboxOutcome


@dataclass(frozen=True)
class Penalty:
    warning: bool
    slash: int  # integer units taken from the stake


def penalty_for(outcome: SandboxOutcome | None, warnings: int, slashes: int, stake: int,
                base_bps: int) -> Penalty:
    """The penalty of one failed verification, given the miner's history so far."""
    if outcome is SandboxOutcome.TIMEOUT and warnings == 0:
        return Penalty(warning=True, slash=0)
    bps = min(10_000, base_bps * (2 ** min(slashes, 16)))
    return Penalty(warning=False, slash=stake * bps // 10_000)
