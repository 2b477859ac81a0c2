"""Starting or joining the Ray cluster the platform runs on."""

from __future__ import annotations

import logging
import os

import ray

from hcp.config import Settings
from hcp.errors import HcpError

log = logging.getLogger(__name__)


class NoClusterError(HcpError):
    code = "no_cluster"
    http_status = 503


def _quiet_ray() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray must not reach for the network to resolve a hub model or report usage.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def start_or_join(settings: Settings, *, log_to_driver: bool = True) -> None:
    """Join ``HCP_RAY_ADDRESS`` if set; otherwise start a local cluster on this machine."""
    _quiet_ray()
    kwargs: dict = {
        "namespace": settings.ray_namespace,
        "log_to_driver": log_to_driver,
        "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}},
    }
    if settings.ray_address:
        ray.init(address=settings.ray_address, **kwargs)
        return
    kwargs["include_dashboard"] = False
    if settings.ray_temp_dir:
        kwargs["_temp_dir"] = str(settings.ray_temp_dir)
    ray.init(**kwargs)


def join(settings: Settings) -> None:
    """Connect to the running cluster (``hcp status``/``hcp switch``) or raise NoClusterError."""
    _quiet_ray()
    address = settings.ray_address or "auto"
    try:
        ray.init(address=address, namespace=settings.ray_namespace, log_to_driver=False,
                 logging_level=logging.WARNING,
                 **({"_temp_dir": str(settings.ray_temp_dir)} if settings.ray_temp_dir else {}))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise NoClusterError(f"no running hcp cluster at {address!r} (start one with `hcp run`): {exc}") from exc
