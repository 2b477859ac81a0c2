"""HCP_OPS__LOG_JSON=true switches a process of the platform to JSON lines that carry the
request's correlation id; the default stays plain lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcp.config import Settings
from hcp.logging_setup import configure_for
from hcp.observability.logs import correlation
from hcp.observability.settings import OpsSettings


@pytest.fixture
def hcp_handler() -> Iterator[None]:
    root = logging.getLogger()
    before = [(h, h.formatter, list(h.filters)) for h in root.handlers]
    level = root.level
    yield
    for h in list(root.handlers):
        if getattr(h, "_hcp", False) and all(h is not b[0] for b in before):
            root.removeHandler(h)
    for h, fmt, filters in before:
        h.setFormatter(fmt)
        h.filters = filters
    root.setLevel(level)


def test_json_lines_carry_the_correlation_id(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             hcp_handler: None) -> None:
    configure_for(Settings(home=tmp_path, ops=OpsSettings(log_json=True)))
    with correlation("req-7f3a"):
        logging.getLogger("hcp.test").warning("switch refused", extra={"device": "gpu-0"})
    [line] = [x for x in capsys.readouterr().err.splitlines() if "switch refused" in x]
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "hcp.test"
    assert record["correlation_id"] == "req-7f3a" and record["device"] == "gpu-0"
    assert record["time"].endswith("+00:00")


def test_plain_lines_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                hcp_handler: None) -> None:
    configure_for(Settings(home=tmp_path))
    logging.getLogger("hcp.test").warning("plain")
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.endswith("plain")]
    assert " WARNING hcp.test: plain" in line
