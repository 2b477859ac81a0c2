"""What every SHA-256d searcher shares: cancellation, a nonce check, the batch loop.

Its own module so the backends (numpy, numba, torch) import it without importing each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from hcp.errors import MiningError
from hcp.mining.sha256_numpy import ArrayOps, Sha256dJob, Sha256dKernel

CancelCheck = Callable[[], bool]


class SearchCancelled(Exception):
    """A search abandoned because its ``cancel`` turned true; ``at`` is where it stopped.

    Control flow, not an error: nothing at or after ``at`` was searched (what came before
    is discarded too), so the caller simply searches the range again later.
    """

    def __init__(self, at: int) -> None:
        super().__init__(f"search cancelled at nonce {at}")
        self.at = at


def cancel_check(cancel: object) -> CancelCheck | None:
    """Normalise ``cancel`` (None, an Event-like object with ``is_set``, or a callable)."""
    if cancel is None:
        return None
    is_set = getattr(cancel, "is_set", None)
    if callable(is_set):
        return is_set  # type: ignore[no-any-return]
    if callable(cancel):
        return cancel  # type: ignore[return-value]
    raise MiningError(
        "cancel must be a threading.Event or a callable returning bool",
        value=type(cancel).__name__,
    )


def verify_nonce(prefix: bytes, nonce: int, target: int) -> bool:
    digest = hashlib.sha256(hashlib.sha256(prefix + nonce.to_bytes(4, "little")).digest()).digest()
    return int.from_bytes(digest, "little") <= target


class BatchSearcher:
    """Runs kernels over a nonce range in chunks; one kernel (buffer set) per chunk size."""

    def __init__(
        self, make_ops: Callable[[int], ArrayOps], batch_size: int, min_batch: int = 1024
    ) -> None:
        self._make_ops = make_ops
        self.batch_size = batch_size
        self._min_batch = min(min_batch, batch_size)
        self._kernels: dict[int, Sha256dKernel] = {}
        self._job: Sha256dJob | None = None

    def kernel(self, n: int) -> Sha256dKernel:
        size = self._min_batch  # powers of two, so a short range does not pay for a full batch
        while size < n and size < self.batch_size:
            size *= 2
        size = min(size, self.batch_size)
        if size not in self._kernels:
            self._kernels[size] = Sha256dKernel(self._make_ops(size))
        return self._kernels[size]

    def job(self, prefix: bytes) -> Sha256dJob:
        if self._job is None or self._job.prefix != prefix:
            self._job = Sha256dJob.from_prefix(prefix)
        return self._job

    def search(
        self, prefix: bytes, start: int, count: int, target: int, cancel: CancelCheck | None = None
    ) -> list[int]:
        job = self.job(prefix)
        top = target >> 224
        found: list[int] = []
        end = start + count
        pos = start
        while pos < end:
            n = min(self.batch_size, end - pos)
            kernel = self.kernel(n)
            h7 = kernel.run(job, pos, cancel)
            if h7 is None:
                raise SearchCancelled(pos)
            sure, ties = kernel.ops.candidates(h7, n, top)
            found.extend(pos + i for i in sure)
            found.extend(pos + i for i in ties if verify_nonce(prefix, pos + i, target))
            pos += n
        found.sort()
        return found


