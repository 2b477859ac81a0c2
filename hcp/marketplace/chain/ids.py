"""On-chain keys of off-chain ids: deterministic, so a retry finds what the first try did."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak


def job_key(job_id: str) -> bytes:
    """bytes32 job id of an off-chain job id."""
    return keccak(text=f"hcp:job:{job_id}")


def op_key(op_id: str) -> bytes:
    return keccak(text=f"hcp:op:{op_id}")


def transfer_terms(to: str, amount: int) -> bytes:
    """What GPUToken records for an op id: keccak256(abi.encode(to, amount))."""
    return keccak(encode(["address", "uint256"], [to, amount]))
