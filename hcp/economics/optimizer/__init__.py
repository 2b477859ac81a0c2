"""The optimizer service: decisions from prices, carried out through a fleet port, recorded."""

from hcp.economics.optimizer.profit import ProfitModel, realized_profit_micro_usd
from hcp.economics.optimizer.repository import OptimizerRepository, outcome_dict
from hcp.economics.optimizer.service import OptimizerService
from hcp.economics.optimizer.types import (
    ApplyOrder,
    ApplyResult,
    DecisionRecord,
    FleetPort,
    OutcomeRecord,
    OutcomeStatus,
    StepResult,
    switch_reason,
)

__all__ = [
    "ApplyOrder", "ApplyResult", "DecisionRecord", "FleetPort", "OptimizerRepository", "OptimizerService",
    "OutcomeRecord", "OutcomeStatus", "ProfitModel", "StepResult", "outcome_dict",
    "realized_profit_micro_usd", "switch_reason",
]
