"""How long `hcp status` takes, as a user types it, with the platform running and stopped.

Starts `hcp run --no-live --no-api --no-optimizer` in a fresh HCP_HOME (the embedded defaults:
SQLite, two simulated GPUs), then runs `hcp status --json` ``--rounds`` times against it, and
again after the platform has stopped (the answer then comes from the store). The baseline is
`hcp --help` in the same run: what starting the CLI costs before it does any work.

    python -m bench.status [--rounds 10]

Prints one JSON object per line (see bench/common.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import emit, note, percentile

B = "status"
HCP = str(Path(sys.executable).parent / "hcp")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([HCP, *args], env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"hcp {' '.join(args)} failed: {r.stderr[-2000:]}")
    return took


def _series(env: dict[str, str], rounds: int, *args: str) -> list[float]:
    return [_timed(env, *args) for _ in range(rounds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hcp-bench-status-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("HCP_DATABASE_URL", "HCP_RAY_ADDRESS", "HCP_RAY_NAMESPACE")}
    env.update(HCP_HOME=str(work / "home"), HCP_RAY_TEMP_DIR=str(work / "ray"),
               HCP_API_PORT=str(_free_port()), PYTHONUNBUFFERED="1")
    log_path = work / "run.log"
    try:
        with open(log_path, "w") as log:
            run = subprocess.Popen([HCP, "run", "--no-live", "--no-api", "--no-optimizer",
                                    "--duration", "900", "--refresh", "5"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while "fleet running" not in log_path.read_text():
                if run.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("hcp run did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(1)
            note("platform up; timing `hcp status` against it")
            _timed(env, "status", "--json")  # the first join warms the OS page cache
            baseline = _series(env, args.rounds, "--help")
            running = _series(env, args.rounds, "status", "--json")
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(timeout=180)
        stopped = _series(env, args.rounds, "status", "--json")
        base = percentile(baseline, 50)
        for name, xs in (("running", running), ("stopped", stopped)):
            emit(B, f"hcp_status_{name}_p50", percentile(xs, 50), "s", base, rounds=args.rounds,
                 baseline_is="hcp --help p50")
            emit(B, f"hcp_status_{name}_max", max(xs), "s", max(baseline), rounds=args.rounds,
                 baseline_is="hcp --help max")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
