"""The application builder of ``serve run serve_apps/serve_config.yaml``.

The platform's actors start through the topology first (in the ``serve run`` driver, which then
owns them) unless a platform already runs in the namespace (``hcp run --no-api``), so Serve
fronts the same platform ``hcp run`` does. ``args`` override HCP_ settings.
"""

from __future__ import annotations

from typing import Any

from actors import topology
from hcp.config import Settings
from hcp.fleet.spec import load_fleet_spec
from serve_apps.app import application


def build(args: dict[str, Any] | None = None) -> Any:
    settings = Settings(**(args or {}))
    if not topology.running(settings):
        topology.launch(settings, load_fleet_spec(settings.fleet_spec), api=False)
    return application(settings)
