"""Who holds a GPU: a customer's marketplace job (RENTED) or a platform workload (INFERENCE).

A held GPU changes mode only for its holder. The optimizer, the power-cap step and operators'
plain switches are refused with ``GpuBusyError`` until the holder releases it, so the router,
the provider agent and the optimizer can never fight over a GPU that is serving a customer.
The hold is committed with the device's state (``device_state.held_by``) and survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hcp.errors import ValidationError
from hcp.fleet.modes import GpuMode

_MAX_ID = 120  # held_by is String(128): the kind prefix and the id must fit


class HoldKind(str, Enum):
    JOB = "job"  # a marketplace rental: the GPU is RENTED to the job's container
    WORKLOAD = "workload"  # a platform workload placed by the router: the GPU serves INFERENCE

    @property
    def mode(self) -> GpuMode:
        """The mode a GPU is in while held by this kind of holder."""
        return GpuMode.RENTED if self is HoldKind.JOB else GpuMode.INFERENCE


@dataclass(frozen=True)
class Hold:
    kind: HoldKind
    id: str

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > _MAX_ID or ":" in self.id:
            raise ValidationError("a hold names its holder by an id of 1 to 120 characters, no ':'",
                                  holder=self.id[:_MAX_ID])

    @classmethod
    def job(cls, job_id: str) -> Hold:
        return cls(HoldKind.JOB, job_id)

    @classmethod
    def workload(cls, workload_id: str) -> Hold:
        return cls(HoldKind.WORKLOAD, workload_id)

    @property
    def key(self) -> str:
        """The stored form, ``kind:id``."""
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, key: str | None) -> Hold | None:
        if not key:
            return None
        kind, _, ident = key.partition(":")
        return cls(HoldKind(kind), ident)

    @property
    def mode(self) -> GpuMode:
        return self.kind.mode

    def __str__(self) -> str:
        return f"{self.kind.value} {self.id}"
