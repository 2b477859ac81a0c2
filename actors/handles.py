"""The one wrapper every call on a GPU or facility actor goes through.

Like Ray Serve's replica wrapper, it keeps Ray at one place: callers (router, optimizer,
facility, API, CLI, inference path) get the core's typed messages (``GpuStatus``,
``SwitchResult``, ``FacilityReport``) and typed hcp errors, never a ``RayTaskError``: an error
the actor raised comes back as itself, and an actor that does not answer (restarting after
a crash, or lost with its node) is a ``DeviceUnavailableError`` (503). Unit tests fake this
class, not Ray.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from hcp.errors import DeviceUnavailableError, HcpError, UnknownDeviceError
from hcp.fleet.facility import FacilityReport
from hcp.fleet.holds import Hold
from hcp.fleet.modes import GpuMode, SwitchRequest
from hcp.fleet.status import GpuStatus, SwitchResult

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 5.0
# A switch pauses mining at a batch boundary and commits to the store: well under a second,
# but a store under load may take longer; past this the caller sees a timeout, never a hang.
SWITCH_TIMEOUT_S = 30.0


def as_hcp_error(exc: BaseException, what: str) -> HcpError:
    """The typed error a failed actor call means."""
    if isinstance(exc, RayTaskError):
        # First: Ray raises a class that is both a RayTaskError and the cause's class, whose
        # text is the remote traceback; the cause itself is the clean typed error.
        cause = getattr(exc, "cause", None)
        if isinstance(cause, HcpError):
            return cause
        return DeviceUnavailableError(f"{what} failed: {type(cause or exc).__name__}")
    if isinstance(exc, HcpError):
        return exc
    if isinstance(exc, (RayActorError, GetTimeoutError, asyncio.TimeoutError, TimeoutError)):
        return DeviceUnavailableError(f"{what} is not answering ({type(exc).__name__}); it may "
                                      "be restarting", device=what)
    if isinstance(exc, RayError):
        return DeviceUnavailableError(f"{what}: {type(exc).__name__}")
    raise exc


def get(ref: Any, what: str, timeout: float) -> Any:
    """``ray.get`` with the wrapper's error mapping (for sync callers)."""
    try:
        return ray.get(ref, timeout=timeout)
    except (RayError, TimeoutError) as exc:
        raise as_hcp_error(exc, what) from None


async def wait(ref: Any, what: str, timeout: float) -> Any:
    """Await an actor call with the wrapper's error mapping (for async callers)."""
    try:
        return await asyncio.wait_for(ref, timeout)
    except (RayError, TimeoutError, asyncio.TimeoutError) as exc:
        raise as_hcp_error(exc, what) from None


@dataclass
class FleetClient:
    """Typed calls on a running fleet's GPU and facility actors."""

    gpus: dict[str, Any] = field(default_factory=dict)  # device id -> GpuActor handle
    facilities: dict[str, Any] = field(default_factory=dict)  # name -> FacilityActor handle
    asic_facility: dict[str, str] = field(default_factory=dict)  # ASIC id -> facility name
    status_timeout_s: float = STATUS_TIMEOUT_S
    switch_timeout_s: float = SWITCH_TIMEOUT_S

    def _gpu(self, device_id: str) -> Any:
        try:
            return self.gpus[device_id]
        except KeyError:
            raise UnknownDeviceError(f"no GPU {device_id!r} in the running fleet",
                                     device_id=device_id) from None

    def subset(self, device_ids: Iterable[str]) -> FleetClient:
        ids = set(device_ids)
        return FleetClient({k: v for k, v in self.gpus.items() if k in ids}, {}, {},
                           self.status_timeout_s, self.switch_timeout_s)

    def owner_of(self, asic_id: str) -> str:
        try:
            return self.asic_facility[asic_id]
        except KeyError:
            raise UnknownDeviceError(f"no device {asic_id!r} in the running fleet",
                                     device_id=asic_id) from None

    # -- refs: for callers that fan out and wait themselves (the optimizer's broadcast) ----
    def switch_ref(self, device_id: str, target: GpuMode | str, reason: str,
                   correlation_id: str | None = None) -> Any:
        request = SwitchRequest(device_id, GpuMode.parse(target), reason, correlation_id)
        if device_id in self.gpus:
            return self.gpus[device_id].switch.remote(request)
        return self.facilities[self.owner_of(device_id)].switch.remote(request)

    # -- sync ------------------------------------------------------------------------
    def status(self, device_id: str) -> GpuStatus:
        return get(self._gpu(device_id).status.remote(), f"GPU {device_id}", self.status_timeout_s)

    def statuses(self, device_ids: Iterable[str] | None = None,
                 last: Mapping[str, GpuStatus] | None = None,
                 facility: str = "") -> dict[str, GpuStatus]:
        """Every GPU's status, one bounded wait for all; a GPU that does not answer in time
        shows as unavailable (with its last known state from ``last``), never as an error."""
        ids = list(self.gpus if device_ids is None else device_ids)
        refs = {i: self._gpu(i).status.remote() for i in ids}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs),
                            timeout=self.status_timeout_s)
        done = set(ready)
        out: dict[str, GpuStatus] = {}
        for i, ref in refs.items():
            try:
                if ref not in done:
                    raise GetTimeoutError(f"no status within {self.status_timeout_s:g} s")
                out[i] = ray.get(ref)
            except RayError as exc:
                err = as_hcp_error(exc, f"GPU {i}")
                prev = (last or {}).get(i)
                out[i] = prev.unavailable(err.detail) if prev is not None else \
                    GpuStatus.never_seen(i, facility, err.detail)
        return out

    def switch(self, device_id: str, target: GpuMode | str, reason: str = "",
               correlation_id: str | None = None) -> SwitchResult:
        return get(self.switch_ref(device_id, target, reason, correlation_id),
                   f"device {device_id}", self.switch_timeout_s)

    def hold(self, device_id: str, hold: Hold, reason: str = "",
             replaces: Hold | None = None) -> SwitchResult:
        return get(self._gpu(device_id).hold.remote(hold, reason, replaces),
                   f"GPU {device_id}", self.switch_timeout_s)

    def release(self, device_id: str, hold: Hold, then: GpuMode | None = None,
                reason: str = "") -> SwitchResult | None:
        return get(self._gpu(device_id).release.remote(hold, then, reason),
                   f"GPU {device_id}", self.switch_timeout_s)

    def facility_reports(self) -> list[FacilityReport]:
        return [get(h.report.remote(), f"facility {name}", self.status_timeout_s * 2)
                for name, h in sorted(self.facilities.items())]

    # -- async -----------------------------------------------------------------------
    async def astatus(self, device_id: str) -> GpuStatus:
        return await wait(self._gpu(device_id).status.remote(), f"GPU {device_id}",
                          self.status_timeout_s)

    async def astatuses(self, device_ids: Iterable[str] | None = None) -> dict[str, GpuStatus | HcpError]:
        ids = list(self.gpus if device_ids is None else device_ids)
        results = await asyncio.gather(*(self.astatus(i) for i in ids), return_exceptions=True)
        out: dict[str, GpuStatus | HcpError] = {}
        for i, r in zip(ids, results):
            if isinstance(r, BaseException) and not isinstance(r, HcpError):
                r = as_hcp_error(r, f"GPU {i}")
            out[i] = r  # type: ignore[assignment]
        return out

    async def aswitch(self, device_id: str, target: GpuMode | str, reason: str = "",
                      correlation_id: str | None = None) -> SwitchResult:
        return await wait(self.switch_ref(device_id, target, reason, correlation_id),
                          f"device {device_id}", self.switch_timeout_s)

    async def ahold(self, device_id: str, hold: Hold, reason: str = "",
                    replaces: Hold | None = None) -> SwitchResult:
        return await wait(self._gpu(device_id).hold.remote(hold, reason, replaces),
                          f"GPU {device_id}", self.switch_timeout_s)

    async def arelease(self, device_id: str, hold: Hold, then: GpuMode | None = None,
                       reason: str = "") -> SwitchResult | None:
        return await wait(self._gpu(device_id).release.remote(hold, then, reason),
                          f"GPU {device_id}", self.switch_timeout_s)

    async def afacility_reports(self) -> list[FacilityReport]:
        names = sorted(self.facilities)
        return list(await asyncio.gather(*(
            wait(self.facilities[n].report.remote(), f"facility {n}", self.status_timeout_s * 2)
            for n in names)))

    async def aembed(self, device_id: str, texts: list[str], timeout: float = 60.0) -> list[list[float]]:
        return await wait(self._gpu(device_id).embed.remote(texts), f"GPU {device_id}", timeout)
