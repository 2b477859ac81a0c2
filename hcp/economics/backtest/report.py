"""Text rendering of a backtest: the policy table and the assumptions behind it."""

from __future__ import annotations

import json
from typing import Any

from hcp.economics.backtest.engine import BacktestResult


def table_rows(result: BacktestResult) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, o in result.outcomes.items():
        rows.append((name, f"{o.profit_usd:,.2f}", str(o.switches),
                     f"{result.pct_of_optimum(name):.2f}"))
    return rows


def markdown_table(result: BacktestResult) -> str:
    lines = ["| policy | profit USD | switches | % of optimum |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(result)]
    return "\n".join(lines)


def assumptions_text(assumptions: dict[str, Any]) -> str:
    return json.dumps(assumptions, indent=2, default=str)
