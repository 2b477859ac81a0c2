"""Switching policy: which mode each device should be in, with hysteresis and power caps."""

from hcp.economics.policy.decision import Decision, DecisionReason
from hcp.economics.policy.fleet_policy import FleetPolicy, StepResult
from hcp.economics.policy.params import PolicyParams
from hcp.economics.policy.profit import MODES, FleetArrays

__all__ = ["MODES", "Decision", "DecisionReason", "FleetArrays", "FleetPolicy", "PolicyParams",
           "StepResult"]
