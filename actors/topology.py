"""The one module that starts, finds and stops the whole platform from one ``Settings``.

``hcp run``, ``serve run serve_apps/serve_config.yaml``, the notebooks and the integration
tests all start the platform through ``launch``; ``hcp status``/``hcp switch`` and the Serve
replicas find it through ``find`` (actors by name, from ``ActorName``).

Order of a launch: the store is migrated once (under a lock) and the fleet spec synced; then
the GPU and facility actors (both contexts resident), the escrow-ledger actor (the one owner
of the marketplace's books), the notary's sandbox runners, the chain indexer when a JSON-RPC
chain is configured, the oracle's validators and their coordinator, the router, the provider
agent, the optimizer, and last the Serve application.

Lifetime: the actors are not detached. They belong to the driver that launched them (``hcp
run``) and stop with it; their state is in the store, so the next ``hcp run`` resumes every
GPU in its committed mode, every workload and every escrow where it was. A crash of the
driver therefore never strands actors holding GPUs without an owner (tested in
tests/e2e/test_cli.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray

from actors.fleet import find_fleet, launch_fleet, shutdown_fleet
from actors.handles import FleetClient
from actors.options import ActorName
from hcp.config import Settings, prepare_home, secret_file
from hcp.errors import NoClusterError, NotFoundError
from hcp.fleet.modes import GpuMode
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import FleetSpec
from hcp.store import engine_for, migrate

log = logging.getLogger(__name__)
# Ray says at every connection that token auth is on; it is, by design, for every hcp cluster.
logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)

_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


# -- the cluster ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterRecord:
    """Where this HCP_HOME's platform runs, written at launch (``HCP_HOME/platform.json``)."""

    gcs_address: str
    namespace: str
    pid: int
    started_at: str
    api_url: str | None = None
    token_path: str | None = None

    @staticmethod
    def path(settings: Settings) -> Path:
        return settings.home / "platform.json"

    def save(self, settings: Settings) -> None:
        path = self.path(settings)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.__dict__, fh)
        tmp.replace(path)

    @classmethod
    def load(cls, settings: Settings) -> ClusterRecord | None:
        try:
            return cls(**json.loads(cls.path(settings).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def forget(cls, settings: Settings) -> None:
        cls.path(settings).unlink(missing_ok=True)

    def alive(self, timeout_s: float = 0.5) -> bool:
        """Cheap checks before a driver connects: the launching process and the GCS port."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        host, _, port = self.gcs_address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            return False


def _token_path(settings: Settings) -> Path:
    """This platform's own Ray auth token (``ray job submit`` needs ``RAY_AUTH_MODE=token``)."""
    path = settings.home / "ray.token"
    if not path.exists():
        prepare_home(settings)
        secret_file(path)
    return path


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def cluster_env(settings: Settings) -> dict[str, str]:
    """Environment of a local cluster's processes (they inherit the driver's)."""
    from serve_apps.ratelimit import trusted_proxy_env

    # Ray enables token auth for a new local cluster by itself; it reads the token from this
    # path (RAY_AUTH_MODE is read when ray is imported, so it is not set here).
    env = {"RAY_USAGE_STATS_ENABLED": "0", **_OFFLINE,
           "RAY_AUTH_TOKEN_PATH": str(_token_path(settings)),
           # uvicorn in Serve's proxy believes X-Forwarded-For only from the configured proxies.
           **trusted_proxy_env(settings.api.trusted_proxies)}
    if settings.ray.node_ip in _LOOPBACK:
        # Ray on Linux turns a loopback node address into the machine's own; this keeps
        # loopback, so its unauthenticated metrics exporter is not reachable from the network
        # (its gRPC ports need the cluster's token).
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return env


def start_cluster(settings: Settings, *, log_to_driver: bool = True, record: bool = True,
                  **init_overrides: Any) -> None:
    """Join ``HCP_RAY_ADDRESS`` if set; otherwise start a local cluster on this machine."""
    kwargs: dict[str, Any] = {"namespace": settings.ray.namespace, "log_to_driver": log_to_driver,
                              "runtime_env": {"env_vars": dict(_OFFLINE)},
                              "logging_level": logging.WARNING}
    if settings.ray.address:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=settings.ray.address, **kwargs, **init_overrides)
        return
    env = cluster_env(settings)
    os.environ.update(env)
    if env.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0":
        keep_loopback()
    kwargs.update(include_dashboard=False, _node_ip_address=settings.ray.node_ip)
    if settings.ray.temp_dir:
        kwargs["_temp_dir"] = str(settings.ray.temp_dir)
    kwargs.update(init_overrides)
    ray.init(**kwargs)
    if record:
        ClusterRecord(ray.get_runtime_context().gcs_address, settings.ray.namespace, os.getpid(),
                      datetime.now(UTC).isoformat(),
                      token_path=os.environ["RAY_AUTH_TOKEN_PATH"]).save(settings)


def keep_loopback() -> None:
    """Make this process's Ray keep loopback addresses as they are.

    Ray on Linux replaces a loopback address with the machine's own (for its node and for a
    cluster it joins). ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` turns that off, but Ray reads
    it once, at import: processes started from here get it from the environment, this one
    from the constant.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def use_token(path: str) -> None:
    """Token auth with the token at ``path`` for this process's Ray client.

    Ray turns token auth on by itself only for a cluster it finds on its own, never for an
    explicit address, and reads RAY_AUTH_MODE into its config at import: set both, then have
    its config read the environment again (what Ray's own token setup does).
    """
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    os.environ["RAY_AUTH_MODE"] = "token"
    from ray._raylet import Config

    Config.initialize("")


def join_cluster(settings: Settings) -> ClusterRecord | None:
    """Connect to this HCP_HOME's running platform, never to another cluster on the machine.

    The recorded address is checked first (the launching process alive, the GCS port open),
    so a platform that is not running is reported at once rather than after Ray's retries.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.ray.address:
        ray.init(address=settings.ray.address, namespace=settings.ray.namespace,
                 log_to_driver=False, logging_level=logging.WARNING)
        return None
    rec = ClusterRecord.load(settings)
    if rec is None or not rec.alive():
        raise NoClusterError(f"no hcp platform is running for {settings.home} "
                             "(start one with `hcp run`)")
    if rec.token_path:
        use_token(rec.token_path)
    if rec.gcs_address.rsplit(":", 1)[0] in _LOOPBACK:
        keep_loopback()  # else Ray dials the machine's own address, where nothing listens
    try:
        ray.init(address=rec.gcs_address, namespace=rec.namespace, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise NoClusterError(f"the platform recorded at {rec.gcs_address} does not answer: "
                             f"{type(exc).__name__}") from exc
    return rec


# -- the platform --------------------------------------------------------------------------

@dataclass
class Platform:
    settings: Settings
    fleet: FleetClient
    spec: FleetSpec | None = None
    router: Any = None
    optimizer: Any = None
    escrow: Any = None
    indexer: Any = None
    image_cache: Any = None
    oracle: Any = None  # the validators' coordinator
    validators: dict[str, Any] = field(default_factory=dict)
    agent: Any = None  # this node's provider agent, when HCP_AGENT__SLOTS rent GPUs out
    sandboxes: list[Any] = field(default_factory=list)
    api_url: str | None = None


def prepare_store(spec: FleetSpec, settings: Settings) -> FleetRepository:
    """Migrate the store once for this launch (locked against a concurrent one), sync the fleet."""
    engine = engine_for(settings.resolved_database_url)
    migrate(engine)
    repo = FleetRepository(engine)
    repo.sync_fleet(spec)
    return repo


def launch(settings: Settings, spec: FleetSpec, *, start_mode: GpuMode | None = GpuMode.MINING,
           api: bool = True, optimizer: bool = True, feed: str | None = None,
           notary: bool = True, serve_http: bool = True, oracle: bool = True) -> Platform:
    """Start every part of the platform on the connected cluster and return their handles.

    Keep the returned ``Platform`` for as long as the platform runs: the actors are owned by
    this driver (see the module doc).
    """
    from actors.escrow import launch_escrow_ledger
    from actors.router import launch_router

    prepare_store(spec, settings)
    fleet = launch_fleet(spec, settings)
    p = Platform(settings, fleet, spec)
    if start_mode is not None:
        for gid in fleet.gpus:
            fleet.switch(gid, start_mode, "platform start")
    p.escrow = launch_escrow_ledger(settings)
    _settle_owed_escrow(settings, p.escrow)
    if api:
        from actors.images import launch_image_cache

        p.image_cache = launch_image_cache(settings)  # the image node the API serves
    if notary:
        from actors.notary import start_sandbox_pool

        p.sandboxes = start_sandbox_pool(settings)
    if settings.chain.rpc_url and settings.chain.deployment is not None:
        from actors.indexer import launch_indexer

        p.indexer = launch_indexer(settings)
    if oracle and settings.oracle.enabled:
        from actors.validator import launch_oracle

        # Before the agent: its first heartbeat goes to the validators.
        p.oracle, p.validators = launch_oracle(settings)
    p.router = launch_router(fleet, settings)
    if settings.agent.slots or settings.agent.workloads:
        from actors.agent import launch_agent

        # The rented GPUs' and the container workloads' containers, on this node.
        p.agent = launch_agent(settings, fleet, {g.id: g.model for g in spec.gpus()})
    if optimizer:
        from actors.optimizer import launch_optimizer

        s = settings if feed is None else settings.with_(optimizer_feed=feed)
        p.optimizer = launch_optimizer(spec, s, fleet.gpus, fleet.facilities)
    publish_metrics_targets(settings)
    if api:
        from serve_apps.app import deploy

        p.api_url = deploy(settings, start_http=serve_http)
        rec = ClusterRecord.load(settings)
        if rec is not None and rec.pid == os.getpid():
            ClusterRecord(**{**rec.__dict__, "api_url": p.api_url}).save(settings)
    return p


def publish_metrics_targets(settings: Settings) -> bool:
    """Write where every live node's Ray metrics agent listens as a Prometheus file-sd list
    (``hcp ops prometheus`` reads the folder). Ray writes such a list only when its dashboard
    runs, and the platform runs without it; nodes join and leave, so ``hcp run`` calls this
    again on every refresh (the file is rewritten only when the list changed)."""
    from hcp.observability.discovery import ray_targets, write_targets
    from hcp.observability.stack import targets_dir

    try:
        return write_targets(targets_dir(settings) / "ray.json", ray_targets(ray.nodes()))
    except OSError:  # a read-only or full disk must not stop the platform: say so and go on
        log.warning("could not write the Prometheus targets under %s", targets_dir(settings),
                    exc_info=True)
        return False


def _settle_owed_escrow(settings: Settings, escrow: Any) -> None:
    """Replay the escrow steps a crash left owed (once per launch, through the ledger actor)."""
    from actors.escrow import RemoteEscrow
    from hcp.marketplace.service import MarketplaceService

    engine = engine_for(settings.resolved_database_url)
    replayed = MarketplaceService(engine, RemoteEscrow(handle=escrow), settings).reconcile()
    if replayed:
        log.info("replayed %d owed escrow steps", replayed)


def find(settings: Settings) -> Platform:
    """The running platform's handles, by name, from any driver on its cluster."""
    fleet = find_fleet(settings)
    p = Platform(settings, fleet)
    for name, attr in ((ActorName.ROUTER, "router"), (ActorName.OPTIMIZER, "optimizer"),
                       (ActorName.ESCROW, "escrow"), (ActorName.INDEXER, "indexer"),
                       (ActorName.ORACLE, "oracle")):
        try:
            setattr(p, attr, ray.get_actor(name.value, namespace=settings.ray.namespace))
        except ValueError:
            pass  # not part of this platform (or restarting)
    if settings.agent.slots or settings.agent.workloads:
        from actors.agent import find_agent

        try:
            p.agent = find_agent(settings)
        except NotFoundError:
            pass
    rec = ClusterRecord.load(settings)
    p.api_url = rec.api_url if rec else None
    return p


def shutdown(p: Platform) -> None:
    """Stop in reverse order: no decision or workload goes out while the fleet stops."""
    if p.api_url is not None:
        try:
            from ray import serve

            serve.shutdown()
        except Exception:  # stopping anyway: the cluster goes next
            log.exception("Serve did not shut down cleanly")
    if p.optimizer is not None:
        from actors.optimizer import stop_optimizer

        stop_optimizer(p.optimizer)
    if p.agent is not None:
        from actors.agent import stop_agent

        stop_agent(p.agent)  # its containers keep running: the next agent adopts them
    if p.oracle is not None:
        from actors.validator import stop_oracle

        stop_oracle(p.oracle, p.validators)
    for h in [p.router, p.indexer, p.image_cache, p.escrow, *p.sandboxes]:
        if h is not None:
            try:
                ray.kill(h, no_restart=True)
            except Exception:  # already gone
                log.debug("actor already gone", exc_info=True)
    shutdown_fleet(p.fleet)


def running(settings: Settings) -> bool:
    """Whether this namespace already holds a platform (its router answers to its name)."""
    try:
        ray.get_actor(ActorName.ROUTER.value, namespace=settings.ray.namespace)
        return True
    except ValueError:
        return False


def api_app_name(settings: Settings) -> str:
    from serve_apps.app import app_name

    return app_name(settings)


def require_platform(settings: Settings) -> Platform:
    try:
        return find(settings)
    except NotFoundError as exc:
        raise NoClusterError(exc.detail) from None


def require_fleet(settings: Settings) -> FleetClient:
    """The running fleet alone (what ``hcp status`` and ``hcp switch`` need): no lookups of
    the platform's other actors."""
    try:
        return find_fleet(settings)
    except NotFoundError as exc:
        raise NoClusterError(exc.detail) from None
