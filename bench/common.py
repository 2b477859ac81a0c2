"""Helpers shared by the benchmarks: percentiles and the one-JSON-object-per-line output."""

from __future__ import annotations

import json
import sys
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        raise ValueError("no samples")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def emit(bench: str, metric: str, value: float, unit: str, baseline: float | None = None,
         **extra: Any) -> dict[str, Any]:
    ratio = (value / baseline) if baseline not in (None, 0) else None
    line = {"bench": bench, "metric": metric, "value": _sig(value), "unit": unit,
            "baseline": None if baseline is None else _sig(baseline),
            "ratio": None if ratio is None else _sig(ratio), **extra}
    print(json.dumps(line), flush=True)
    return line


def _sig(x: float) -> float:
    """Six significant digits: small ratios (resident/cold) must not round to 0."""
    return float(f"{x:.6g}")


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
