"""Names in the SQL ledger: reserved account prefixes, account-name and key checks."""

from __future__ import annotations

from typing import Any

from hcp.errors import ValidationError

ISSUANCE = "@issuance"
ESCROW_PREFIX = "escrow:"
STAKE_PREFIX = "stake:"
MAX_NAME = 128


def _escrow_account(job_id: str) -> str:
    return f"{ESCROW_PREFIX}{job_id}"


def _stake_account(provider: str) -> str:
    return f"{STAKE_PREFIX}{provider}"


def check_account_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValidationError("an account is a non-empty name of at most 128 characters", account=name)
    if name.startswith(("@", ESCROW_PREFIX, STAKE_PREFIX)):
        raise ValidationError("account names starting with '@', 'escrow:' or 'stake:' are reserved",
                              account=name)
    return name


def _check_key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationError(f"{what} must be a non-empty string of at most 64 characters")
    return value
