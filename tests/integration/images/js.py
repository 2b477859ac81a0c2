"""Run the npm reference tools (installed by ``npm ci`` from package-lock.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent


def node_bin() -> str:
    node = shutil.which("node")
    assert node, "node is required (Node 20)"
    for pkg in ("ipfs-unixfs-importer", "kubo-rpc-client", "@ipld/car"):
        assert (ROOT / "node_modules" / pkg).is_dir(), f"npm ci has not installed {pkg}"
    return node


def run_script(name: str, payload: Any, timeout: float = 600, args: list[str] | None = None) -> Any:
    proc = subprocess.run([node_bin(), str(HERE / name), *(args or [])], input=json.dumps(payload),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)
