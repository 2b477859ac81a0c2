"""The provider agent's metrics (the catalogue's ``agent`` area) over a MetricsSink: image
pulls (verified or not) and how long they took, and its containers by state. The operator's
agent actor records through Ray's metrics agent (``RaySink``); a test through any sink."""

from __future__ import annotations

from collections.abc import Mapping

from hcp.observability.sink import MetricsSink

CONTAINER_STATES = ("created", "running", "exited")


def record_pull(sink: MetricsSink, node: str, result: str, seconds: float) -> None:
    """One image pull for a job: ``result`` ok, failed, or verify_failed (a block or a layer
    did not match its CID or digest)."""
    sink.inc("hcp_agent_image_pulls_total", node=node, result=result)
    sink.observe("hcp_agent_image_pull_seconds", seconds, node=node)


def record_containers(sink: MetricsSink, node: str, counts: Mapping[str, int]) -> None:
    """The agent's containers now, by state (every state set, so a gone one reads 0)."""
    for state in CONTAINER_STATES:
        sink.set("hcp_agent_containers", counts.get(state, 0), node=node, state=state)
