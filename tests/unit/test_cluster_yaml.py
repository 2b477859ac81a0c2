"""cluster.yaml passes Ray's own launcher validation, without any cloud call or ray.init.

``ray up`` runs ``prepare_config`` (fill provider defaults, merge setup commands,
check docker, set per-type worker bounds) and then ``validate_config`` (the JSON
schema in ray/autoscaler/ray-schema.json plus cross-field checks) before it
touches AWS; these tests run the same two steps, and the schema check on the
file as written too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray._private.label_utils import validate_node_label_syntax
from ray.autoscaler._private.util import prepare_config, validate_config

from hcp.fleet.spec import load_fleet_spec

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO / "cluster.yaml"
EXAMPLE_FLEET = REPO / "examples" / "fleet.gpu-cluster.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    with CLUSTER_YAML.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def _check(config: dict[str, Any]) -> dict[str, Any]:
    # The file as written must satisfy the schema on its own (prepare_config
    # would crash with a TypeError on e.g. a string where a list belongs), and
    # again after Ray fills in the AWS defaults, as `ray up` does.
    validate_config(config)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _gpu_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: node
        for name, node in config["available_node_types"].items()
        if name != config["head_node_type"]
    }


def test_cluster_yaml_passes_ray_validation(raw: dict[str, Any]) -> None:
    prepared = _check(raw)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["provider"]["region"] == "us-west-2"


def test_head_offers_no_gpus_and_workers_do(raw: dict[str, Any]) -> None:
    head = raw["available_node_types"][raw["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    assert head["resources"]["CPU"] > 0
    workers = _gpu_types(raw)
    assert workers
    for name, node in workers.items():
        assert node["resources"]["GPU"] >= 1, name
        assert node["resources"]["CPU"] >= node["resources"]["GPU"], name
        assert node["max_workers"] >= node.get("min_workers", 0), name
    assert sum(n.get("min_workers", 0) for n in workers.values()) >= 1  # a GPU node comes up


def test_labels_are_valid_ray_labels(raw: dict[str, Any]) -> None:
    for node in raw["available_node_types"].values():
        validate_node_label_syntax(node.get("labels"))


def test_setup_installs_hcp_and_cuda_torch(raw: dict[str, Any]) -> None:
    assert raw["file_mounts"]["~/hcp"] == "."
    setup = " ; ".join(raw["setup_commands"])
    assert "pip install -e ~/hcp" in setup
    assert "download.pytorch.org/whl/cu" in setup
    assert any("ray start --head" in c for c in raw["head_start_ray_commands"])
    assert any("$RAY_HEAD_IP" in c for c in raw["worker_start_ray_commands"])


def test_example_fleet_fits_the_gpu_node_types(raw: dict[str, Any]) -> None:
    """Every device_index of examples/fleet.gpu-cluster.yaml exists on a node type
    labelled with its facility and model."""
    gpus_on: dict[tuple[str, str], int] = {}
    for node in _gpu_types(raw).values():
        labels = node["labels"]
        key = (labels["hcp.facility"], labels["hcp.gpu-model"])
        gpus_on[key] = max(gpus_on.get(key, 0), node["resources"]["GPU"])
    for gpu in load_fleet_spec(EXAMPLE_FLEET).gpus():
        assert gpu.device_index is not None
        assert gpu.device_index < gpus_on[(gpu.facility, gpu.model)], gpu


_GPU = "gpu_h100"


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        pytest.param(lambda c: c.update(max_workers="six"), "'six' is not of type 'integer'",
                     id="max_workers-not-an-int"),
        pytest.param(lambda c: c.update(max_workers=-1), "less than the minimum of 0",
                     id="max_workers-negative"),
        pytest.param(lambda c: c.update(gpu_count=8), "'gpu_count' was unexpected",
                     id="unknown-top-level-key"),
        pytest.param(lambda c: c["available_node_types"][_GPU]["resources"].update(GPU=0.5),
                     "0.5 is not of type 'integer'", id="fractional-node-gpu"),
        pytest.param(lambda c: c["available_node_types"][_GPU].update(gpus=8),
                     "'gpus' was unexpected", id="unknown-node-type-key"),
        pytest.param(lambda c: c["available_node_types"][_GPU].pop("node_config"),
                     "'node_config' is a required property", id="node-type-without-node_config"),
        pytest.param(lambda c: c.update(head_node_type="missing"),
                     "must be one of `available_node_types`", id="unknown-head-node-type"),
        pytest.param(lambda c: c.update(max_workers=0), "smaller than the sum of `min_workers`",
                     id="min_workers-above-max_workers"),
        pytest.param(lambda c: c.update(setup_commands="pip install -e ~/hcp"),
                     "is not of type 'array'", id="setup_commands-not-a-list"),
    ],
)
def test_broken_copies_fail_validation(
    raw: dict[str, Any], breakage: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    broken = copy.deepcopy(raw)
    breakage(broken)
    with pytest.raises((jsonschema.ValidationError, ValueError)) as info:
        _check(broken)
    assert expected in str(info.value)
