"""``ContainerPort`` over the docker SDK: locked-down containers, labelled to their job.

Every container runs with no privileges, every capability dropped, no new privileges, the
Engine's default seccomp profile (never ``unconfined``), a private IPC namespace, a read-only
root with tmpfs scratch, CPU/memory/pids limits from the offer (memory+swap equal: no swap),
no network or a bridge without inter-container traffic, and no restart policy: after an
Engine restart the agent, not the Engine, decides what happens to the job.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import DeviceRequest, LogConfig

from hcp.agent.messages import (
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    EngineCaps,
    NetworkMode,
    RawLine,
    StatsReading,
)
from hcp.agent.settings import AgentSettings
from hcp.agent.spec import LABEL_AGENT, LABEL_MANAGED, MANAGED_BY
from hcp.errors import ContainerEngineError, InvalidImageError

log = logging.getLogger(__name__)

_STATUS = {"created": ContainerStatus.CREATED, "running": ContainerStatus.RUNNING,
           "paused": ContainerStatus.RUNNING, "restarting": ContainerStatus.RUNNING,
           "removing": ContainerStatus.EXITED, "exited": ContainerStatus.EXITED,
           "dead": ContainerStatus.EXITED}
_STREAMS = {1: "stdout", 2: "stderr"}
_ENGINE_DOWN = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                ConnectionError, OSError)


def parse_engine_time(text: str | None) -> datetime | None:
    """The Engine's RFC 3339 times (nanoseconds); its zero time means 'never'."""
    if not text or text.startswith("0001-01-01"):
        return None
    return datetime.fromtimestamp(parse_ts_ns(text) / 1e9, UTC)


def parse_ts_ns(text: str) -> int:
    """``2026-12-01T23:34:19.319375855Z`` → integer nanoseconds since the epoch."""
    head, _, frac = text.rstrip("Z").partition(".")
    offset = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, _, rest = frac.partition(sign)
            offset = sign + rest
    secs = datetime.fromisoformat(head + (offset or "+00:00")).timestamp()
    return int(secs) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def parse_log_message(stream_id: int, payload: bytes, max_bytes: int) -> RawLine:
    stamp, _, rest = payload.partition(b" ")
    partial = not rest.endswith(b"\n")
    body = rest[:-1] if not partial else rest
    if len(body) > max_bytes:
        body = body[:max_bytes]
    return RawLine(_STREAMS.get(stream_id, "stdout"), parse_ts_ns(stamp.decode("ascii")),
                   body.decode("utf-8", errors="replace"), partial)


class DockerEngine:
    def __init__(self, client: docker.DockerClient, settings: AgentSettings) -> None:
        self.client = client
        self.api = client.api
        self.settings = settings
        self._caps: EngineCaps | None = None

    @classmethod
    def from_env(cls, settings: AgentSettings, base_url: str | None = None) -> DockerEngine:
        try:
            client = (docker.DockerClient(base_url=base_url, timeout=120) if base_url
                      else docker.from_env(timeout=120))
            client.ping()
        except (docker.errors.DockerException, *_ENGINE_DOWN) as exc:
            raise ContainerEngineError(f"Docker Engine is not reachable: {type(exc).__name__}") from exc
        return cls(client, settings)

    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except docker.errors.APIError as exc:
            if exc.status_code is not None and exc.status_code >= 500:
                raise ContainerEngineError(f"Docker Engine failed to {what}: {exc.explanation}") from exc
            raise
        except docker.errors.DockerException as exc:
            raise ContainerEngineError(f"Docker Engine failed to {what}: {type(exc).__name__}") from exc
        except _ENGINE_DOWN as exc:
            raise ContainerEngineError(f"Docker Engine unreachable ({what}): {type(exc).__name__}") from exc

    def capabilities(self) -> EngineCaps:
        if self._caps is None:
            info = self._call("describe itself", self.api.info)
            backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem", "")
            self._caps = EngineCaps(nvidia="nvidia" in (info.get("Runtimes") or {}),
                                    disk_quota=info.get("Driver") == "overlay2" and backing == "xfs",
                                    cpus=int(info.get("NCPU") or 0))
            log.info("Docker Engine %s: NVIDIA runtime %s, disk quota %s", info.get("ServerVersion"),
                     "present" if self._caps.nvidia else "absent (simulated GPUs)",
                     "enforced" if self._caps.disk_quota else "by tmpfs only")
        return self._caps

    def _egress_network(self) -> str:
        name = self.settings.egress_network
        if not self._call("list networks", self.client.networks.list, names=[name]):
            try:
                self._call("create a network", self.client.networks.create, name, driver="bridge",
                           options={"com.docker.network.bridge.enable_icc": "false"},
                           labels={LABEL_MANAGED: MANAGED_BY})
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # another agent created it first
                    raise
        return name

    def options(self, spec: ContainerSpec) -> dict[str, Any]:
        """The ``containers.create`` keywords (kept apart so tests can read them)."""
        opts: dict[str, Any] = {
            "name": spec.name, "command": list(spec.command) if spec.command else None,
            "environment": dict(spec.env), "labels": dict(spec.labels),
            "nano_cpus": spec.nano_cpus, "mem_limit": spec.mem_bytes,
            "memswap_limit": spec.mem_bytes, "pids_limit": spec.pids_limit,
            "read_only": True, "tmpfs": dict(spec.tmpfs), "privileged": False,
            "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"], "ipc_mode": "private",
            "restart_policy": {"Name": "no"}, "detach": True, "tty": False, "stdin_open": False,
            "log_config": LogConfig(type="json-file", config={"max-size": "100m", "max-file": "3"}),
        }
        if spec.network is NetworkMode.NONE:
            opts["network_mode"] = "none"
        else:
            opts["network"] = self.settings.egress_network
        if spec.storage_bytes is not None:
            opts["storage_opt"] = {"size": str(spec.storage_bytes)}
        if spec.gpu_device is not None:
            opts["device_requests"] = [DeviceRequest(device_ids=[spec.gpu_device],
                                                     capabilities=[["gpu"]])]
        return opts

    def create(self, spec: ContainerSpec) -> str:
        opts = self.options(spec)
        if spec.network is NetworkMode.EGRESS:
            self._egress_network()
        try:
            c = self._call("create a container", self.client.containers.create, spec.image, **opts)
            return str(c.id)
        except docker.errors.ImageNotFound as exc:
            raise InvalidImageError(f"the Engine has no image {spec.image}") from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # this job's container exists (an earlier attempt)
                return str(self._call("inspect", self.api.inspect_container, spec.name)["Id"])
            raise

    def start(self, container_id: str) -> None:
        self._call("start a container", self.api.start, container_id)

    def _state(self, attrs: dict[str, Any]) -> ContainerState:
        st = attrs.get("State") or {}
        health = (st.get("Health") or {}).get("Status")
        return ContainerState(
            id=attrs["Id"], status=_STATUS.get(st.get("Status", ""), ContainerStatus.EXITED),
            labels=(attrs.get("Config") or {}).get("Labels") or {},
            exit_code=st.get("ExitCode") if st.get("Status") in ("exited", "dead") else None,
            oom_killed=bool(st.get("OOMKilled")), started_at=parse_engine_time(st.get("StartedAt")),
            finished_at=parse_engine_time(st.get("FinishedAt")), health=health)

    def inspect(self, container_id: str) -> ContainerState:
        try:
            return self._state(self._call("inspect", self.api.inspect_container, container_id))
        except docker.errors.NotFound:
            return ContainerState(container_id, ContainerStatus.MISSING)

    def stop(self, container_id: str, grace_seconds: float) -> None:
        try:
            self._call("stop a container", self.api.stop, container_id,
                       timeout=max(0, int(grace_seconds)))
        except docker.errors.NotFound:
            pass

    def remove(self, container_id: str) -> None:
        try:
            self._call("remove a container", self.api.remove_container, container_id, force=True,
                       v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise

    def list_managed(self, agent_id: str) -> list[ContainerState]:
        found = self._call("list containers", self.api.containers, all=True, filters={
            "label": [f"{LABEL_MANAGED}={MANAGED_BY}", f"{LABEL_AGENT}={agent_id}"]})
        states = [self.inspect(c["Id"]) for c in found]
        return [s for s in states if s.status is not ContainerStatus.MISSING]

    def follow_logs(self, container_id: str, since_s: int) -> Iterator[RawLine]:
        params = {"follow": 1, "stdout": 1, "stderr": 1, "timestamps": 1}
        if since_s > 0:
            params["since"] = since_s
        res = self._call("read logs", self.api._get,
                         self.api._url("/containers/{0}/logs", container_id), params=params,
                         stream=True)
        try:
            if res.status_code == 404:
                return
            self.api._raise_for_status(res)
            # A follow stream may sit idle for hours: no read timeout on it.
            self.api._disable_socket_timeout(self.api._get_raw_response_socket(res))
            # docker-py's own log reader drops which stream a frame came from; read the frames
            # (8-byte header: stream, 3 zero bytes, big-endian length) to keep it.
            cap = self.settings.log_max_line_bytes
            while True:
                header = res.raw.read(8)
                if not header:
                    return
                if len(header) < 8:
                    raise ContainerEngineError("log stream ended inside a frame header")
                stream_id, length = struct.unpack(">BxxxL", header)
                payload = res.raw.read(length) if length else b""
                if len(payload) < length:
                    raise ContainerEngineError("log stream ended inside a frame")
                if payload:
                    yield parse_log_message(stream_id, payload, cap)
        except _ENGINE_DOWN as exc:
            raise ContainerEngineError(f"log stream lost: {type(exc).__name__}") from exc
        except docker.errors.DockerException as exc:
            raise ContainerEngineError(f"log stream failed: {type(exc).__name__}") from exc
        finally:
            res.close()

    def stats(self, container_id: str) -> StatsReading | None:
        try:
            s = self._call("read stats", self.api.stats, container_id, stream=False, one_shot=True)
        except docker.errors.NotFound:
            return None
        at = parse_engine_time(s.get("read"))
        cpu = s.get("cpu_stats") or {}
        mem = s.get("memory_stats") or {}
        if at is None or not mem:
            return None
        return StatsReading(at=at, cpu_total_ns=int((cpu.get("cpu_usage") or {}).get("total_usage", 0)),
                            system_total_ns=int(cpu.get("system_cpu_usage") or 0),
                            online_cpus=int(cpu.get("online_cpus") or 1),
                            mem_bytes=int(mem.get("usage") or 0),
                            mem_limit_bytes=int(mem.get("limit") or 0),
                            pids=int((s.get("pids_stats") or {}).get("current") or 0))
