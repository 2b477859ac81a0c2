"""Starting or joining the Ray cluster the platform runs on."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from hcp.config import Settings
from hcp.errors import HcpError
from serve_apps.ratelimit import trusted_proxy_env

log = logging.getLogger(__name__)


class NoClusterError(HcpError):
    code = "no_cluster"
    http_status = 503


def _quiet_ray() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray must not reach for the network to resolve a hub model or report usage.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def start_or_join(settings: Settings, *, log_to_driver: bool = True, record: bool = False) -> None:
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
    # Ray's processes inherit this environment: Serve's HTTP proxy (uvicorn) then believes
    # X-Forwarded-For only from the configured proxies, not from any local client.
    os.environ.update(trusted_proxy_env(settings.api_trusted_proxies))
    kwargs["include_dashboard"] = False
    kwargs["_node_ip_address"] = settings.ray_node_ip
    if settings.ray_node_ip in ("127.0.0.1", "localhost", "::1"):
        # Ray on Linux turns a loopback node address into the machine's own address; this is
        # its switch to keep loopback, so its unauthenticated metrics exporter is not reachable
        # from the network (its gRPC ports need the cluster's token).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if settings.ray_temp_dir:
        kwargs["_temp_dir"] = str(settings.ray_temp_dir)
    ray.init(**kwargs)
    if record:  # the platform's own cluster (`hcp run`), not a backtest sweep's
        _record_address(settings)


def _address_file(settings: Settings) -> Path:
    return settings.home / "ray.address"


def _record_address(settings: Settings) -> None:
    """Remember which cluster this platform runs on: with several Ray clusters on one machine
    (tests, notebooks, other users), `address="auto"` may find another one."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        _address_file(settings).write_text(ray.get_runtime_context().gcs_address)
    except (OSError, AttributeError) as exc:
        log.warning("cannot record the cluster address: %s", exc)


def forget_address(settings: Settings) -> None:
    _address_file(settings).unlink(missing_ok=True)


def _recorded_address(settings: Settings) -> str | None:
    try:
        return _address_file(settings).read_text().strip() or None
    except OSError:
        return None


def join(settings: Settings) -> None:
    """Connect to the running cluster (``hcp status``/``hcp switch``) or raise NoClusterError."""
    _quiet_ray()
    recorded = _recorded_address(settings)
    # A recorded address left by an `hcp run` that crashed is tried first, then "auto".
    candidates = [settings.ray_address] if settings.ray_address else [a for a in (recorded, "auto") if a]
    errors = []
    for address in candidates:
        try:
            ray.init(address=address, namespace=settings.ray_namespace, log_to_driver=False,
                     logging_level=logging.WARNING,
                     **({"_temp_dir": str(settings.ray_temp_dir)} if settings.ray_temp_dir else {}))
            return
        except (ConnectionError, RuntimeError, ValueError) as exc:
            errors.append(f"{address!r}: {exc}")
    raise NoClusterError(f"no running hcp cluster (start one with `hcp run`): {'; '.join(errors)}")
