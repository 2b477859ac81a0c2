"""JSON-lines logs carry the correlation id set at the edge and copied into actor messages."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from hcp.observability.logs import (
    CorrelationFilter,
    HcpJsonFormatter,
    accept_correlation_id,
    correlated,
    correlation,
    current_correlation_id,
)


def _capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HcpJsonFormatter())
    handler.addFilter(CorrelationFilter())
    logger = logging.getLogger("tests.logs.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def _lines(stream: io.StringIO) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_correlation_id() -> None:
    logger, stream = _capture()
    with correlation("req-1"):
        logger.info("admitted %s", "wl-7", extra={"workload": "wl-7"})
    logger.warning("outside")
    try:
        raise ValueError("bad")
    except ValueError:
        with correlation("req-2"):
            logger.exception("failed")
    first, second, third = _lines(stream)
    assert first["message"] == "admitted wl-7" and first["correlation_id"] == "req-1"
    assert first["level"] == "INFO" and first["logger"] == "tests.logs.json"
    assert first["workload"] == "wl-7" and first["time"].endswith("+00:00")
    assert second["correlation_id"] is None and second["level"] == "WARNING"
    assert third["correlation_id"] == "req-2" and "ValueError: bad" in third["exc_info"]


def test_the_id_follows_tasks_and_copied_messages() -> None:
    class Actor:
        @correlated
        def submit(self, workload: str) -> tuple[str, str | None]:
            return workload, current_correlation_id()

        @correlated
        async def probe(self) -> str | None:
            await asyncio.sleep(0)
            return current_correlation_id()

    actor = Actor()

    async def edge() -> list[object]:
        with correlation("req-9"):
            # What a caller does: copy the current id into the message it sends.
            sent = current_correlation_id()
            child = asyncio.create_task(asyncio.sleep(0, result=current_correlation_id()))
            return [await child, actor.submit("wl-1", correlation_id=sent),
                    await actor.probe(correlation_id=sent)]

    assert asyncio.run(edge()) == ["req-9", ("wl-1", "req-9"), "req-9"]
    # A message that carried no id keeps whatever context the receiver has.
    assert actor.submit("wl-2") == ("wl-2", None)
    assert current_correlation_id() is None


def test_client_ids_are_accepted_only_when_sane() -> None:
    assert accept_correlation_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "has space", "x" * 129, "new\nline", '{"json":1}'):
        fresh = accept_correlation_id(bad)
        assert fresh != bad and len(fresh) == 32
