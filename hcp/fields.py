"""Field types for everything that comes from outside: strict, bounded, storable.

Pydantic's lax mode turns ``true`` into 1, ``"5"`` into 5 and the Arabic-Indic digit ``"٣"``
into 3; it accepts ``NaN`` for a float (SQLite then stores NULL) and integers no column can
hold. Inputs of the platform's edges (HTTP bodies and queries, CLI options, wire payloads)
use these types instead, so what the store cannot hold is refused as a 422 at the edge,
with the field's name, and never reaches the store as a 500.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from hcp.jsonsafe import is_safe_text

INT64_MAX = 2**63 - 1  # BIGINT: counts, stakes, rewards, micro-USD
UINT256_LIMIT = 2**256  # token amounts (the ERC-20 contract's uint256)
_ASCII_DIGITS = re.compile(r"[0-9]{1,78}")
# Dates a store can hold and Python can convert to UTC: year 1 with an offset east of UTC
# overflows in ``astimezone`` (``0001-01-01T00:00:00+14:00``).
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _safe_text(v: str) -> str:
    if not is_safe_text(v):
        raise ValueError("text must not contain NUL characters or lone surrogates")
    return v


def _aware_in_range(v: datetime) -> datetime:
    if v.tzinfo is None or v.utcoffset() is None:
        raise ValueError("needs a timezone (UTC offset)")
    try:
        utc = v.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("is outside the supported range of dates") from None
    if not _EARLIEST <= utc < _LATEST:
        raise ValueError("must lie between 1970 and 9999 (UTC)")
    return utc


def _token_amount(v: Any) -> Any:
    # JSON numbers lose precision past 2**53 in most clients, so amounts may come as strings;
    # only ASCII decimal digits count as a number.
    if isinstance(v, str):
        if not _ASCII_DIGITS.fullmatch(v):
            raise ValueError("an amount is a decimal string of ASCII digits (smallest units)")
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("an amount is an integer (or a decimal string) in smallest units")
    return v


SafeStr = Annotated[str, AfterValidator(_safe_text)]
"""Text without NUL or lone surrogates (what PostgreSQL text and UTF-8 can hold)."""

def _fits_bigint(v: int) -> int:
    if v > INT64_MAX:
        raise ValueError(f"must be at most {INT64_MAX}")
    return v


# Bounds a field adds (``Field(le=10)``) apply on top: constraints inside the alias would
# take precedence over the field's own, so the BIGINT bound is a validator.
StrictCount = Annotated[int, Strict(), Field(ge=0), AfterValidator(_fits_bigint)]
"""A non-negative count or integer amount that fits a BIGINT; JSON integers only."""

StrictPositive = Annotated[int, Strict(), Field(gt=0), AfterValidator(_fits_bigint)]

StrictFloat = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(
    lambda v: v if not isinstance(v, (bool, str)) else _not_a_number(v))]
"""A finite number; ``true`` and ``"1.5"`` are refused."""

TokenAmount = Annotated[int, BeforeValidator(_token_amount), Field(ge=0, lt=UINT256_LIMIT)]
"""Token units (uint256): a JSON integer or a decimal string of ASCII digits."""

AwareDatetime = Annotated[datetime, AfterValidator(_aware_in_range)]
"""A timezone-aware instant between 1970 and 9999, normalised to UTC."""


def _not_a_number(v: Any) -> Any:
    raise ValueError("must be a JSON number")


def check_cursor_int(cursor: str | None, field: str = "cursor") -> int | None:
    """An opaque integer cursor from a query string: ASCII digits that fit a BIGINT."""
    from hcp.errors import ValidationError

    if cursor is None or cursor == "":
        return None
    if not re.fullmatch(r"[0-9]{1,19}", cursor) or int(cursor) > INT64_MAX:
        raise ValidationError(f"{field} must be a `next_cursor` from a previous page",
                              **{field: cursor[:40]})
    return int(cursor)
