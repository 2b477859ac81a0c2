"""Prometheus file-sd target lists: where the platform's metrics agents listen.

Ray writes ``prom_metrics_service_discovery.json`` in its session directory only when its
dashboard runs; ``hcp run`` starts Ray without it. The platform then writes the same list
itself: ``write_targets(targets_dir(settings) / "ray.json", ray_targets(ray.nodes()))``
every few seconds (and the stand-in exporters of the tests write theirs the same way).
Format: https://prometheus.io/docs/guides/file-sd/ — a list of {"targets": [...], "labels": {...}}.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def ray_targets(nodes: Iterable[Mapping[str, Any]], job: str = "ray") -> list[dict[str, Any]]:
    """One target group of every live node's metrics export address (``ray.nodes()`` rows)."""
    addresses = sorted({
        f"{_host(n['NodeManagerAddress'])}:{int(n['MetricsExportPort'])}"
        for n in nodes
        if n.get("Alive", n.get("alive")) and int(n.get("MetricsExportPort") or 0) > 0
    })
    return [{"targets": addresses, "labels": {"job": job}}]


def static_targets(addresses: Iterable[str], job: str = "ray") -> list[dict[str, Any]]:
    return [{"targets": sorted(set(addresses)), "labels": {"job": job}}]


def write_targets(path: Path, groups: list[dict[str, Any]]) -> bool:
    """Write the list atomically (Prometheus may read it at any time); False if unchanged."""
    text = json.dumps(groups, indent=1, sort_keys=True)
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
