"""One Ray session for the whole integration run, on a private temp dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    from actors.topology import start_cluster
    from hcp.config import Settings

    # A short path: Ray's Unix socket paths must stay under ~107 characters.
    temp_dir = tempfile.mkdtemp(prefix="hcp-ray-", dir="/tmp")
    home = tempfile.mkdtemp(prefix="hcp-itest-home-")
    # The platform's own cluster start (token auth, loopback, trusted proxies), as `hcp run`.
    start_cluster(
        Settings(home=home, ray_namespace="hcp-test", ray_temp_dir=temp_dir), log_to_driver=False,
        record=False,
        # Logical CPUs: GPU, facility, optimizer, router, notary and escrow actors all fit
        # on the two cores of a CI machine because most of them idle.
        num_cpus=8,
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                  "PYTHONPATH": os.getcwd()}},
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
