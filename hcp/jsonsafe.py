"""Parsing JSON from outside the platform without trusting its shape.

``json.loads`` recurses once per nesting level in C; with a dependency that raises the
interpreter's recursion limit (``py_ecc`` sets 100,000), a body of 100,000 ``[`` overflows the C
stack and kills the process. So the nesting depth is measured first, by a flat scan that
never recurses, and only a bounded document is handed to ``json.loads``. The parse then
refuses what JSON forbids or the store cannot hold: ``NaN``/``Infinity``, floats that
overflow to infinity, integers of absurd length, NUL characters and lone surrogates (neither
PostgreSQL's text nor UTF-8 can carry them).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from hcp.errors import BodyTooLargeError, MalformedBodyError


@dataclass(frozen=True)
class JsonLimits:
    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_int_digits: int = 100  # 10**100 is far beyond any amount the platform holds (uint256 < 10**78)


DEFAULT_LIMITS = JsonLimits()


def nesting_depth(data: bytes, stop_at: int | None = None) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, ignoring brackets inside strings.

    One pass, no recursion; it returns as soon as ``stop_at`` is exceeded.
    """
    depth = deepest = 0
    in_string = escaped = False
    # Only the six structural/quoting bytes matter; ``re`` finds them at C speed.
    for m in _STRUCTURE.finditer(data):
        ch = m.group()
        if in_string:
            if ch == b"\\":
                # A run of backslashes: an odd count escapes the next byte.
                run = m.end() - m.start()
                if run % 2 == 1 and m.end() < len(data) and data[m.end():m.end() + 1] == b'"':
                    escaped = True
                continue
            if ch == b'"':
                if escaped:
                    escaped = False
                    continue
                in_string = False
            continue
        if ch == b'"':
            in_string = True
        elif ch in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    return deepest
        elif ch in (b"]", b"}"):
            depth -= 1
    return deepest


_STRUCTURE = re.compile(rb'\\+|["\[\]{}]')


def loads(data: bytes | str, limits: JsonLimits = DEFAULT_LIMITS, *, what: str = "body") -> Any:
    """Parse untrusted JSON within ``limits``; every refusal is a typed 4xx error."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > limits.max_bytes:
        raise BodyTooLargeError(f"the {what} exceeds {limits.max_bytes} bytes",
                                limit=limits.max_bytes)
    depth = nesting_depth(raw, stop_at=limits.max_depth)
    if depth > limits.max_depth:
        raise MalformedBodyError(f"the {what} nests deeper than {limits.max_depth} levels",
                                 max_depth=limits.max_depth)
    if b"\x00" in raw:
        raise MalformedBodyError(f"the {what} contains a NUL character")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBodyError(f"the {what} is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_no_constant,
                           parse_float=_finite_float,
                           parse_int=lambda s: _bounded_int(s, limits.max_int_digits))
    except json.JSONDecodeError as exc:
        raise MalformedBodyError(f"the {what} is not valid JSON: {exc.msg} at position {exc.pos}"
                                 ) from None
    except (ValueError, RecursionError):
        raise MalformedBodyError(f"the {what} is not valid JSON") from None
    if _bad_string_in(value):
        # Escaped (\\u0000, \\ud800): neither PostgreSQL text nor UTF-8 can hold them.
        raise MalformedBodyError(f"the {what} contains a NUL character or a lone surrogate")
    return value


def _bad_text(s: str) -> bool:
    if "\x00" in s:
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bad_string_in(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _bad_text(v):
                return True
        elif isinstance(v, dict):
            for k, item in v.items():
                if _bad_text(k):
                    return True
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _no_constant(name: str) -> Any:
    raise MalformedBodyError(f"{name} is not a JSON number")


def _finite_float(s: str) -> float:
    f = float(s)
    if not math.isfinite(f):
        raise MalformedBodyError(f"the number {s[:20]}... is out of range")
    return f


def _bounded_int(s: str, max_digits: int) -> int:
    if len(s.lstrip("-")) > max_digits:
        raise MalformedBodyError(f"an integer of more than {max_digits} digits")
    return int(s)


def is_safe_text(s: str) -> bool:
    """Text any store can hold: no NUL, no lone surrogate."""
    return not _bad_text(s)
