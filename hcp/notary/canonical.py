"""Canonical JSON: the exact bytes a miner signs (ML-Chain v6)."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Keys sorted, separators ``,`` and ``:``, UTF-8 without ASCII escaping."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
