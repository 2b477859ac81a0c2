"""Start the fleet's actors on a Ray cluster, and find them again from another process."""

from __future__ import annotations

import logging

import ray

from actors.facility import FacilityActor
from actors.gpu import GpuActor
from actors.handles import FleetClient
from actors.options import (
    facility_actor_name,
    facility_actor_options,
    gpu_actor_name,
    gpu_actor_options,
)
from hcp.config import Settings
from hcp.errors import NotFoundError
from hcp.fleet.spec import FleetSpec

log = logging.getLogger(__name__)


# The fleet's handles: the typed wrapper over its GPU and facility actors.
FleetHandles = FleetClient


def launch_fleet(spec: FleetSpec, settings: Settings) -> FleetHandles:
    """One actor per GPU and per facility; returns once every actor has both contexts up."""
    handles = FleetClient()
    for g in spec.gpus():
        handles.gpus[g.id] = GpuActor.options(**gpu_actor_options(g, settings)).remote(g, settings)
    for fac in spec.facilities:
        own = {g.id: handles.gpus[g.id] for g in fac.gpus}
        handles.facilities[fac.name] = FacilityActor.options(**facility_actor_options(fac, settings)).remote(
            fac, settings, own)
        handles.asic_facility.update({a.id: fac.name for a in fac.asics})
    # Waiting on a cheap call surfaces constructor failures (bad model, store down) here.
    ray.get([h.status.remote() for h in handles.gpus.values()])
    ray.get([h.gpu_ids.remote() for h in handles.facilities.values()])
    return handles


def find_fleet(settings: Settings) -> FleetHandles:
    """Handles of a running fleet, by name, from any driver connected to the cluster."""
    names = ray.util.list_named_actors(all_namespaces=True)
    handles = FleetClient()
    for entry in names:
        if entry.get("namespace") != settings.ray.namespace:
            continue
        name = entry["name"]
        if name.startswith("gpu:"):
            handles.gpus[name[4:]] = ray.get_actor(name, namespace=settings.ray.namespace)
        elif name.startswith("facility:"):
            handles.facilities[name[9:]] = ray.get_actor(name, namespace=settings.ray.namespace)
    if not handles.gpus and not handles.facilities:
        raise NotFoundError(f"no hcp fleet is running in Ray namespace {settings.ray.namespace!r}")
    for name, fac in handles.facilities.items():
        try:
            handles.asic_facility.update({a: name for a in ray.get(fac.asic_ids.remote(), timeout=10)})
        except ray.exceptions.RayError as exc:  # a restarting facility: its ASICs wait for it
            log.warning("facility %s did not list its ASICs: %s", name, exc)
    return handles


def shutdown_fleet(handles: FleetClient) -> None:
    """Final checkpoint on every GPU, then stop the actors."""
    try:
        ray.get([h.shutdown.remote() for h in handles.gpus.values()], timeout=30)
    except Exception:  # shutting down: log and go on killing
        log.exception("final checkpoint failed on some GPUs")
    for h in list(handles.facilities.values()) + list(handles.gpus.values()):
        ray.kill(h, no_restart=True)


__all__ = [
    "FleetHandles",
    "facility_actor_name",
    "find_fleet",
    "gpu_actor_name",
    "launch_fleet",
    "shutdown_fleet",
]
