"""What the end-to-end tests do with a running `hcp run`: wait for its fleet, get a token from
the CLI, stop it as Ctrl-C does."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

HCP = str(Path(sys.executable).parent / "hcp")


def wait_for_fleet(run: subprocess.Popen[str], log_path: Path, timeout: float = 300) -> None:
    """Until `hcp run` logs "fleet running"; fails with its log's tail if it exits first."""
    deadline = time.monotonic() + timeout
    while "fleet running" not in log_path.read_text():
        assert run.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(1)


def token(env: dict[str, str], role: str, subject: str) -> str:
    r = subprocess.run([HCP, "token", "--role", role, "--subject", subject], env=env,
                       capture_output=True, check=False, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def stop(run: subprocess.Popen[str], timeout: float = 120) -> int:
    """SIGINT (Ctrl-C) and its exit status; killed, and the timeout raised, if it hangs."""
    run.send_signal(signal.SIGINT)
    try:
        return run.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        raise
