"""The container decided as a value, and the Engine options it becomes: limits, lock-down,
network, GPU access by device request or a labelled simulated GPU; the Engine's log framing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hcp.agent.docker_engine import DockerEngine, parse_engine_time, parse_log_message, parse_ts_ns
from hcp.agent.messages import (
    EngineCaps,
    InstanceSpec,
    JobInfo,
    NetworkMode,
    OfferLimits,
    PulledImage,
    Slot,
)
from hcp.agent.settings import AgentSettings
from hcp.agent.spec import Identity, build_spec
from hcp.errors import ConfigError
from hcp.marketplace.jobs import JobStatus

JOB = JobInfo("job-1", "offer-1", "rent", "prov", "Qm", JobStatus.ACCEPTED, 600,
              datetime(2026, 12, 1, tzinfo=UTC))
OFFER = OfferLimits("offer-1", "A100", 16, 8, 20)
IMAGE = PulledImage("Qm", "sha256:" + "cd" * 32, False)
WHO = Identity("node-1", "prov")


class _NoClient:
    """Options are computed without talking to an Engine."""

    api = None


def _spec(slot: Slot, caps: EngineCaps, settings: AgentSettings | None = None,
          instance: InstanceSpec | None = None):  # type: ignore[no-untyped-def]
    return build_spec(JOB, OFFER, instance or InstanceSpec(), slot, IMAGE, WHO, caps,
                      settings or AgentSettings())


def test_a_real_gpu_is_a_device_request_where_the_nvidia_runtime_exists() -> None:
    spec = _spec(Slot("offer-1", "gpu-3", 3, "A100"), EngineCaps(nvidia=True, disk_quota=True, cpus=64))
    assert spec.gpu_device == "3" and not spec.simulated_gpu
    assert "HCP_SIMULATED_GPU" not in spec.env and spec.labels["hcp.simulated_gpu"] == "0"
    assert spec.storage_bytes == 20 << 30  # a root quota where the Engine enforces one
    opts = DockerEngine(_NoClient(), AgentSettings()).options(spec)
    (req,) = opts["device_requests"]
    assert req["DeviceIDs"] == ["3"] and req["Capabilities"] == [["gpu"]]
    assert opts["storage_opt"] == {"size": str(20 << 30)}


def test_without_the_runtime_the_gpu_is_simulated_and_labelled() -> None:
    spec = _spec(Slot("offer-1", "gpu-3", 3, "A100"), EngineCaps(nvidia=False, disk_quota=False, cpus=2))
    assert spec.gpu_device is None and spec.simulated_gpu and spec.env["HCP_SIMULATED_GPU"] == "1"
    assert spec.nano_cpus == 2 * 10**9  # the offer's 16 vCPUs, capped at what the host has
    assert spec.storage_bytes is None
    opts = DockerEngine(_NoClient(), AgentSettings()).options(spec)
    assert "device_requests" not in opts and "storage_opt" not in opts
    with pytest.raises(ConfigError):
        _spec(Slot("offer-1", "gpu-3", 3), EngineCaps(False, False, 2), AgentSettings(gpu="nvidia"))
    assert _spec(Slot("offer-1", "gpu-3", 3), EngineCaps(True, False, 2),
                 AgentSettings(gpu="simulated")).simulated_gpu


def test_the_engine_options_lock_the_container_down() -> None:
    spec = _spec(Slot("offer-1", "gpu-0"), EngineCaps(False, False, 64),
                 instance=InstanceSpec(NetworkMode.EGRESS, ("python", "-c", "1"),
                                       {"A": "1", "HCP_JOB_ID": "spoofed"}))
    opts = DockerEngine(_NoClient(), AgentSettings()).options(spec)
    assert opts["privileged"] is False and opts["cap_drop"] == ["ALL"]
    assert opts["security_opt"] == ["no-new-privileges:true"]  # and the default seccomp profile
    assert opts["read_only"] is True and opts["tmpfs"] == {"/tmp": f"rw,nosuid,nodev,size={20 << 30}"}
    assert opts["mem_limit"] == opts["memswap_limit"] == 8 << 30 and opts["nano_cpus"] == 16 * 10**9
    assert opts["pids_limit"] == 1024 and opts["restart_policy"] == {"Name": "no"}
    assert opts["network"] == "hcp-egress" and "network_mode" not in opts
    assert opts["command"] == ["python", "-c", "1"] and opts["ipc_mode"] == "private"
    assert opts["environment"]["A"] == "1" and opts["environment"]["HCP_JOB_ID"] == "job-1"
    assert opts["labels"]["hcp.job_id"] == "job-1" and opts["labels"]["hcp.managed_by"] == "hcp-agent"
    none = DockerEngine(_NoClient(), AgentSettings()).options(_spec(Slot("offer-1", "g"), EngineCaps(False, False, 4)))
    assert none["network_mode"] == "none" and "network" not in none


def test_engine_times_and_log_frames_parse_to_nanoseconds() -> None:
    assert parse_ts_ns("2026-12-01T23:34:19.319375855Z") == 1796168059_319375855
    assert parse_ts_ns("2026-12-01T23:34:19Z") == 1796168059_000000000
    assert parse_engine_time("0001-01-01T00:00:00Z") is None
    assert parse_engine_time("2026-12-01T23:34:19.5Z") == datetime(2026, 12, 1, 23, 34, 19, 500000, UTC)
    line = parse_log_message(2, b"2026-12-01T23:34:19.000000001Z oops \xff\n", 100)
    assert (line.stream, line.ts_ns, line.text, line.partial) == ("stderr", 1796168059_000000001, "oops \ufffd", False)
    part = parse_log_message(1, b"2026-12-01T23:34:19Z " + b"x" * 50, 10)
    assert part.partial and part.text == "x" * 10
