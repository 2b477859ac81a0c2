"""Mining context: real Bitcoin SHA-256d proof-of-work on hashlib, numpy, numba or torch.

Pure library (no Ray). ``torch`` is imported only when a torch backend is made or
``make_backend("auto")`` probes for CUDA with torch installed; ``numba`` only when a
numba backend is made or ``make_backend("auto")`` probes for it.
"""

from hcp.mining.backends import (
    GENESIS_HEADER,
    GENESIS_NONCE,
    GENESIS_TARGET,
    NONCE_SPACE,
    HashlibBackend,
    MiningBackend,
    NumbaBackend,
    NumpyBackend,
    SearchCancelled,
    TorchBackend,
    cuda_available,
    make_backend,
    numba_available,
    validate_search,
)
from hcp.mining.context import (
    MiningContext,
    MiningState,
    Share,
    merkle_root_for,
)
from hcp.mining.header import (
    DIFF1_TARGET,
    MAX_TARGET,
    BlockHeader,
    bits_to_target,
    difficulty_from_target,
    double_sha256,
    hash_meets_target,
    load_sample_headers,
    local_job_template,
    share_target,
    target_to_bits,
)

__all__ = [
    "DIFF1_TARGET",
    "GENESIS_HEADER",
    "GENESIS_NONCE",
    "GENESIS_TARGET",
    "MAX_TARGET",
    "NONCE_SPACE",
    "BlockHeader",
    "HashlibBackend",
    "MiningBackend",
    "MiningContext",
    "MiningState",
    "NumbaBackend",
    "NumpyBackend",
    "SearchCancelled",
    "Share",
    "TorchBackend",
    "bits_to_target",
    "cuda_available",
    "difficulty_from_target",
    "double_sha256",
    "hash_meets_target",
    "load_sample_headers",
    "local_job_template",
    "make_backend",
    "merkle_root_for",
    "numba_available",
    "share_target",
    "target_to_bits",
    "validate_search",
]
