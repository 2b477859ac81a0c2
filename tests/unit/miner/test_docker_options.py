"""The Docker sandbox's container flags (checked against a real engine in integration)."""

from __future__ import annotations

import os
from pathlib import Path

from hcp.notary.sandbox.base import SandboxLimits
from hcp.notary.sandbox.docker import DockerSandbox, image_tag

LIMITS = SandboxLimits(fuel=10**9, memory_bytes=64 << 20, timeout_seconds=5, max_stdout_bytes=1024)


def test_container_is_locked_down(tmp_path: Path) -> None:
    opts = DockerSandbox(client=object()).container_options(tmp_path, LIMITS)
    assert opts["network_mode"] == "none"
    assert opts["read_only"] is True
    assert opts["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in opts["security_opt"]
    assert opts["pids_limit"] == 64
    assert opts["mem_limit"] == opts["memswap_limit"] == (64 << 20) + (256 << 20)
    assert opts["volumes"] == {str(tmp_path.resolve()): {"bind": "/work", "mode": "ro"}}
    assert set(opts["tmpfs"]) == {"/tmp"} and "noexec" in opts["tmpfs"]["/tmp"]
    assert opts["user"] == f"{os.getuid()}:{os.getgid()}"
    assert opts["environment"] == {}
    assert opts["labels"] == {"hcp.sandbox": "wasm", "hcp.sandbox.pid": str(os.getpid())}


def test_explicit_container_cap_wins(tmp_path: Path) -> None:
    sb = DockerSandbox(client=object(), container_memory_bytes=96 << 20, pids_limit=16)
    opts = sb.container_options(tmp_path, LIMITS)
    assert opts["mem_limit"] == 96 << 20 and opts["pids_limit"] == 16


def test_image_tag_is_stable_and_content_addressed() -> None:
    assert image_tag() == image_tag()
    assert image_tag().startswith("hcp-wasm-sandbox:")


def test_unreachable_engine_is_a_503_not_a_verdict(tmp_path: Path) -> None:
    import docker
    import pytest

    from hcp.notary.sandbox.docker import SandboxUnavailableError

    dead = docker.DockerClient(base_url=f"unix://{tmp_path}/no-docker.sock", version="1.41")
    with pytest.raises(SandboxUnavailableError) as err:
        DockerSandbox(dead).run(tmp_path, LIMITS)
    assert err.value.http_status == 503 and err.value.code == "sandbox_unavailable"
