"""Canonical JSON: the one rule for the bytes hcp signs and hashes.

The notary's claims, the validators' heartbeats and the dispute evidence bundles all use this
module. Two forms:

- ``jcs_bytes`` — RFC 8785, the JSON Canonicalization Scheme (via the ``rfc8785`` package):
  keys sorted by UTF-16 code units, ECMAScript number serialisation (``1e-7``, ``1`` for
  ``1.0``), minimal string escapes, UTF-8. Any language has an implementation, so this is
  what new signers use.
- ``legacy_bytes`` — what hcp signed first: Python's ``json.dumps`` with sorted keys, compact
  separators and no ASCII escaping. A miner in another language cannot reproduce it for
  numbers like ``1e-07`` or ``1.0``; kept so existing clients' signatures still verify.

A verifier accepts a signature over either form (``signed_forms``). The two agree for most
payloads (strings, small integers, plain decimals), and then there is one form to check.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

CanonicalizationError = rfc8785.CanonicalizationError


_SAFE = 2**53 - 1


def jcs_bytes(obj: Any) -> bytes:
    """RFC 8785 bytes of ``obj``. Raises ``CanonicalizationError`` for NaN and infinities.

    JCS reads every JSON number as an IEEE double. ``rfc8785`` refuses Python integers beyond
    ±(2**53 - 1) rather than round them; such an integer is taken as the double a JSON parser
    makes of it (a float that is a whole number, e.g. ``1e16``, serialises as
    ``10000000000000000``, which Python parses back as an int), so JCS output parses and
    canonicalises to itself.
    """
    try:
        return rfc8785.dumps(obj)
    except rfc8785.IntegerDomainError:
        return rfc8785.dumps(_as_doubles(obj))


def _as_doubles(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, float)):
        return obj
    if isinstance(obj, int):
        if -_SAFE <= obj <= _SAFE:
            return obj
        try:
            return float(obj)
        except OverflowError:
            raise rfc8785.IntegerDomainError(obj) from None
    if isinstance(obj, dict):
        return {k: _as_doubles(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_as_doubles(v) for v in obj]
    return obj


def legacy_bytes(obj: Any) -> bytes:
    """Keys sorted, separators ``,`` and ``:``, UTF-8 without ASCII escaping (``json.dumps``)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def signed_forms(obj: Any) -> tuple[bytes, ...]:
    """The byte strings a signature over ``obj`` may cover: JCS first, then the legacy form
    when it differs. An object JCS cannot represent (NaN, an integer past a double) has only
    its legacy form."""
    legacy = legacy_bytes(obj)
    try:
        jcs = jcs_bytes(obj)
    except CanonicalizationError:
        return (legacy,)
    return (jcs,) if jcs == legacy else (jcs, legacy)
