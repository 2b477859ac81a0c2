"""Priority queues of waiting workloads: highest priority first, FIFO (admission order) inside one."""

from __future__ import annotations

from collections.abc import Iterator

from hcp.workloads.types import Workload


class PriorityQueues:
    """One insertion-ordered dict per priority: O(1) push and remove, ordered iteration."""

    def __init__(self, levels: int = 10) -> None:
        self._levels = levels
        self._q: dict[int, dict[str, Workload]] = {p: {} for p in range(1, levels + 1)}
        self._size = 0

    def push(self, w: Workload) -> None:
        level = self._q[w.priority]
        if w.id in level:
            return
        # A requeued (preempted) workload keeps its place by admission order, ahead of later ones.
        if level and w.seq < next(reversed(level.values())).seq:
            items = sorted([*level.values(), w], key=lambda x: x.seq)
            self._q[w.priority] = {x.id: x for x in items}
        else:
            level[w.id] = w
        self._size += 1

    def remove(self, w: Workload) -> bool:
        if self._q[w.priority].pop(w.id, None) is None:
            return False
        self._size -= 1
        return True

    def __contains__(self, w: Workload) -> bool:
        return w.id in self._q[w.priority]

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Workload]:
        """Workloads in serving order; do not push or remove while iterating (copy first)."""
        for p in range(self._levels, 0, -1):
            yield from self._q[p].values()

    def depth_by_priority(self) -> dict[int, int]:
        return {p: len(q) for p, q in self._q.items() if q}
