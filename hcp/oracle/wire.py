"""The bytes the oracle signs: canonical JSON of plain values, with a domain prefix.

Every oracle message (heartbeat, challenge, answer, report, evidence) is signed as
``b"hcp-oracle/<domain>/v1\\n" + jcs_bytes(body)``. Bodies hold only strings, booleans,
null, lists, objects with ASCII keys and integers within JavaScript's safe range (times are
integer milliseconds since the epoch, bytes are lowercase hex): for such values the notary's
canonical JSON and RFC 8785 (JCS) give the same bytes, so an agent in another language can
sign them with any JCS library. ``check_plain`` refuses anything else before it is signed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hcp.errors import ValidationError
from hcp.notary.canonical import jcs_bytes

MAX_SAFE_INT = (1 << 53) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def check_plain(value: Any, depth: int = 0) -> None:
    """Refuse values whose canonical form could differ between JSON libraries."""
    if depth > 16:
        raise ValidationError("oracle message nested too deeply")
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise ValidationError("integers in oracle messages must fit in 53 bits")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_plain(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise ValidationError("oracle message keys must be ASCII strings")
            check_plain(item, depth + 1)
        return
    raise ValidationError(f"oracle messages carry no {type(value).__name__} values")


def canonical(body: dict[str, Any], check: bool = True) -> bytes:
    # RFC 8785 (JCS), the platform's one canonicalisation (hcp.notary.canonical): a validator
    # or agent in another language reproduces these bytes.
    if check:
        check_plain(body)
    return jcs_bytes(body)


def signing_bytes(domain: str, body: dict[str, Any], check: bool = True) -> bytes:
    """What is signed. Signers check the body is plain; a verifier need not (bytes that are
    not portable simply fail to match any signature made elsewhere)."""
    return b"hcp-oracle/" + domain.encode() + b"/v1\n" + canonical(body, check)


def to_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValidationError("oracle times must be timezone-aware (UTC)")
    return (at - _EPOCH) // _MS  # exact (a float timestamp can be 1 ms off)


def from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def truncate_ms(at: datetime) -> datetime:
    """``at`` at the millisecond precision its wire form keeps."""
    return from_ms(to_ms(at))


class Fields:
    """Typed, bounded reads of one wire object (HTTP/CLI edges); every refusal is a
    ``ValidationError`` naming the field."""

    def __init__(self, obj: Any, what: str) -> None:
        if not isinstance(obj, dict):
            raise ValidationError(f"{what} must be a JSON object")
        self.obj = obj
        self.what = what

    def _get(self, key: str) -> Any:
        if key not in self.obj:
            raise ValidationError(f"{self.what} lacks {key!r}", field=key)
        return self.obj[key]

    def text(self, key: str, max_len: int = 128, min_len: int = 1) -> str:
        v = self._get(key)
        if not isinstance(v, str) or not min_len <= len(v) <= max_len or "\0" in v:
            raise ValidationError(f"{self.what}.{key} must be a string of {min_len}..{max_len} "
                                  "characters", field=key)
        return v

    def integer(self, key: str, lo: int = 0, hi: int = MAX_SAFE_INT) -> int:
        v = self._get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValidationError(f"{self.what}.{key} must be an integer in {lo}..{hi}", field=key)
        return v

    def hexbytes(self, key: str, size: int | None = None, max_bytes: int = 64) -> bytes:
        v = self._get(key)
        try:
            if not isinstance(v, str) or len(v) > 2 * max_bytes or v != v.lower():
                raise ValueError
            out = bytes.fromhex(v)
        except ValueError:
            raise ValidationError(f"{self.what}.{key} must be lowercase hex", field=key) from None
        if size is not None and len(out) != size:
            raise ValidationError(f"{self.what}.{key} must be {size} bytes", field=key)
        return out

    def items(self, key: str, max_items: int) -> list[Any]:
        v = self._get(key)
        if not isinstance(v, list) or len(v) > max_items:
            raise ValidationError(f"{self.what}.{key} must be a list of at most {max_items}",
                                  field=key)
        return v

    def time(self, key: str) -> datetime:
        return from_ms(self.integer(key))
