"""Switching policy: which mode each device should be in, with hysteresis and power caps."""

from hcp.policy.decision import Decision, DecisionReason
from hcp.policy.fleet_policy import FleetPolicy, StepResult
from hcp.policy.params import PolicyParams
from hcp.policy.profit import MODES, FleetArrays

__all__ = ["MODES", "Decision", "DecisionReason", "FleetArrays", "FleetPolicy", "PolicyParams",
           "StepResult"]
