"""Miner SDK for the notary's ML-Chain v6 protocol: keys, artifacts, signed claims, search,
and a client that submits with retry and backoff. ``hcp miner`` is its CLI."""

from hcp.notary.miner.claim import SignedClaim, build_artifact, build_payload, sign_claim
from hcp.notary.miner.client import NotaryClient, RetryPolicy, SubmitOutcome, Task
from hcp.notary.miner.evaluate import LocalEvaluator
from hcp.notary.miner.keys import MinerKey, load_key
from hcp.notary.miner.round import RoundConfig, RoundReport, run_round

__all__ = ["LocalEvaluator", "MinerKey", "NotaryClient", "RetryPolicy", "RoundConfig",
           "RoundReport", "SignedClaim", "SubmitOutcome", "Task", "build_artifact",
           "build_payload", "load_key", "run_round", "sign_claim"]
