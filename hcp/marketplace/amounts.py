"""Token amounts: the one rule both escrow ledgers (SQL and chain) and the edge apply.

Amounts are integers in the token's smallest unit, as the ERC-20 contract holds them: a
uint256, so at most 2**256 - 1, and the total supply may not pass that either.
"""

from __future__ import annotations

from typing import Any

from hcp.errors import ValidationError

MAX_TOKEN = 2**256 - 1


def check_amount(amount: Any, *, positive: bool = True) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("amounts are integers in the smallest unit", amount=repr(amount)[:80])
    if amount < 0 or (positive and amount == 0):
        raise ValidationError("amount must be positive", amount=str(amount))
    if amount > MAX_TOKEN:
        raise ValidationError("amount exceeds 2**256 - 1", amount=str(amount)[:80])
    return amount
