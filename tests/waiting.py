"""Polling helper shared by tests that wait for actors, loops and services."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(pred: Callable[[], T], timeout: float = 60.0, every: float = 0.2) -> T:
    """The first truthy value of ``pred()``; AssertionError if none comes within ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")
