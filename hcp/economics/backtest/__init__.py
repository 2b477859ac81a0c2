"""Backtest of switching policies on real price history (pure hcp, no Ray)."""

from hcp.economics.backtest.engine import POLICIES, BacktestResult, PolicyOutcome, run_backtest
from hcp.economics.backtest.optimum import OptimumResult, perfect_foresight

__all__ = ["POLICIES", "BacktestResult", "OptimumResult", "PolicyOutcome", "perfect_foresight",
           "run_backtest"]
