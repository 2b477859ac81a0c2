"""The platform's HTTP surface in a process of its own (real router core and store, notary and
marketplace mounted): ``python -m tests.integration.hardening.app_server HOME DB_URL PORT``.

A process of its own so that a request that kills the interpreter is seen as a dead process,
not as a crashed test run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from tests.unit.api.support import make_harness


def main() -> None:
    home, url, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    harness = make_harness(home, url, real_router=True, mount_areas=True,
                           api_rate_limit=1_000_000, api_anonymous_rate_limit=1_000_000)
    uvicorn.run(harness.app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
