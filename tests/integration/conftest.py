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

    # A short path: Ray's Unix socket paths must stay under ~107 characters.
    temp_dir = tempfile.mkdtemp(prefix="hcp-ray-", dir="/tmp")
    ray.init(
        # Logical CPUs: GPU, facility, optimizer, router, notary and escrow actors all fit
        # on the two cores of a CI machine because most of them idle.
        num_cpus=8,
        include_dashboard=False,
        namespace="hcp-test",
        _temp_dir=temp_dir,
        log_to_driver=False,
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                  "PYTHONPATH": os.getcwd()}},
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
