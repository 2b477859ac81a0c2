"""The agent's ports over the platform's HTTP API, for a third-party provider's ``hcp agent``
daemon: the job lifecycle through the SDK's marketplace calls, the run records, log lines and
samples through ``/api/v1/agent``.

Appends carry their seqs, so a lost answer is simply sent again (the server keeps each
(job, seq) once); the marketplace's transitions are not resent blindly (the agent reads the
job back instead), so nothing is paid twice.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from hcp.agent.messages import (
    InstanceSpec,
    JobInfo,
    LogLine,
    MetricSample,
    NetworkMode,
    OfferLimits,
    ResumePoint,
    RunRecord,
)
from hcp.agent.oracle import Mailbox
from hcp.client import HcpClient
from hcp.client.calls import seg
from hcp.client.marketplace import Job
from hcp.client.transport import Call, Safety, SyncTransport
from hcp.errors import InstanceNotFoundError, JobNotFoundError
from hcp.images.policy import ImageUsage
from hcp.oracle.challenge import ChallengeAnswer, PossessionChallenge
from hcp.oracle.escalation import Warning
from hcp.oracle.findings import Outcome
from hcp.oracle.heartbeat import Heartbeat

AGENT = "/api/v1/agent"
ORACLE = "/api/v1/oracle"
_CHUNK_BYTES = 512 << 10  # well under the API's 1 MiB body limit


def _job(j: Job) -> JobInfo:
    return JobInfo(id=j.id, offer_id=j.offer_id, renter=j.renter, provider=j.provider,
                   image_cid=j.image_cid, status=j.status, estimated_seconds=j.estimated_seconds,
                   created_at=j.created_at, started_at=j.started_at, ended_at=j.ended_at,
                   final_cost=j.final_cost)


def _json(resp: httpx.Response) -> Any:
    return resp.json()


class HttpMarketplace:
    def __init__(self, client: HcpClient, transport: SyncTransport) -> None:
        self.client = client
        self._t = transport

    def open_jobs(self) -> list[JobInfo]:
        body = self._t.run(Call("GET", f"{AGENT}/jobs", _json))
        return [_job(Job.model_validate(j)) for j in body["items"]]

    def job(self, job_id: str) -> JobInfo | None:
        try:
            return _job(self.client.marketplace.get_job(job_id))
        except JobNotFoundError:
            return None

    def offer(self, offer_id: str) -> OfferLimits:
        o = self.client.marketplace.get_offer(offer_id)
        return OfferLimits(o.id, o.gpu_model, o.vcpu, o.memory_gb, o.storage_gb)

    def accept(self, job_id: str) -> JobInfo:
        return _job(self.client.marketplace.accept_job(job_id))

    def start(self, job_id: str) -> JobInfo:
        return _job(self.client.marketplace.start_job(job_id))

    def complete(self, job_id: str, usage_seconds: int) -> JobInfo:
        return _job(self.client.marketplace.complete_job(job_id, usage_seconds=usage_seconds))

    def cancel(self, job_id: str) -> JobInfo:
        return _job(self.client.marketplace.cancel_job(job_id))


class HttpRunStore:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def _run_view(self, job_id: str) -> dict[str, Any]:
        try:
            return self._t.run(Call("GET", f"{AGENT}/runs/{seg(job_id)}", _json))
        except InstanceNotFoundError:
            return {"run": None, "spec": None, "last_evidence_at": None, "next_metric_seq": 0}

    def instance_spec(self, job_id: str) -> InstanceSpec | None:
        spec = self._run_view(job_id)["spec"]
        if spec is None:
            return None
        return InstanceSpec(NetworkMode(spec["network"]),
                            tuple(spec["command"]) if spec.get("command") else None,
                            dict(spec.get("env") or {}))

    def save_run(self, run: RunRecord) -> None:
        self._t.run(Call("PUT", f"{AGENT}/runs/{seg(run.job_id)}", _json, json=run.to_dict()))

    def get_run(self, job_id: str) -> RunRecord | None:
        run = self._run_view(job_id)["run"]
        return None if run is None else RunRecord.from_dict(run)

    def runs_of(self, agent_id: str, unsettled_only: bool = True) -> list[RunRecord]:
        body = self._t.run(Call("GET", f"{AGENT}/runs", _json, params={
            "agent_id": agent_id, "unsettled_only": "true" if unsettled_only else "false"}))
        return [RunRecord.from_dict(x) for x in body["items"]]

    def append_logs(self, job_id: str, lines: list[LogLine]) -> None:
        for chunk in _chunks([ln.to_dict() for ln in lines]):
            self._t.run(Call("POST", f"{AGENT}/runs/{seg(job_id)}/logs", _json,
                             json={"lines": chunk}, safety=Safety.KEYED))

    def log_resume(self, job_id: str, margin_s: int) -> ResumePoint:
        p = self._t.run(Call("GET", f"{AGENT}/runs/{seg(job_id)}/logs/resume", _json,
                             params={"margin": margin_s}))
        return ResumePoint(int(p["next_seq"]), int(p["since_s"]), int(p["skip"]))

    def append_metrics(self, job_id: str, samples: list[MetricSample]) -> None:
        for chunk in _chunks([x.to_dict() for x in samples]):
            self._t.run(Call("POST", f"{AGENT}/runs/{seg(job_id)}/metrics", _json,
                             json={"samples": chunk}, safety=Safety.KEYED))

    def next_metric_seq(self, job_id: str) -> int:
        return int(self._run_view(job_id)["next_metric_seq"])

    def last_evidence_at(self, job_id: str) -> datetime | None:
        at = self._run_view(job_id)["last_evidence_at"]
        return None if at is None else datetime.fromisoformat(at)


class HttpImageUsage:
    """``UsageSource`` over the platform's image catalog: how many jobs ran each image and
    when last (the platform node keeps these counters in step with the job records)."""

    def __init__(self, transport: SyncTransport, limit: int = 500) -> None:
        self._t = transport
        self._limit = limit

    def image_usage(self) -> list[ImageUsage]:
        body = self._t.run(Call("GET", "/api/v1/images", _json, params={"limit": self._limit}))
        return [ImageUsage(i["cid"], int(i["uses"]),
                           datetime.fromisoformat(i["last_used"]) if i.get("last_used") else None)
                for i in body["items"] if int(i.get("uses") or 0) > 0]


class HttpOracle:
    """``hcp.agent.oracle.OraclePort`` over ``/api/v1/oracle`` (the provider's token names
    it: a daemon sends only its own heartbeats and answers)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def register(self, provider_id: str, public_key: bytes) -> None:
        self._t.run(Call("POST", f"{ORACLE}/keys", _json, json={"public_key": public_key.hex()},
                         ok=(201,)))

    def validators(self) -> dict[str, bytes]:
        body = self._t.run(Call("GET", f"{ORACLE}/validators", _json))
        return {v["id"]: bytes.fromhex(v["public_key"]) for v in body["validators"]}

    def heartbeat(self, hb: Heartbeat) -> int:
        # A heartbeat is refused as a replay when sent twice: retrying it is safe.
        body = self._t.run(Call("POST", f"{ORACLE}/heartbeats", _json, json=hb.to_wire()))
        return int(body["accepted_by"])

    def mailbox(self, provider_id: str) -> Mailbox:
        body = self._t.run(Call("GET", f"{ORACLE}/challenges", _json))
        return Mailbox(tuple(PossessionChallenge.from_wire(c) for c in body["challenges"]),
                       tuple(Warning(w["provider"], w["finding_id"], Outcome(w["outcome"]),
                                     int(w["strikes"]), int(w["strikes_to_penalty"]))
                             for w in body["warnings"]))

    def answer(self, answer: ChallengeAnswer, validator_id: str) -> None:
        self._t.run(Call("POST", f"{ORACLE}/answers", _json,
                         json={"validator": validator_id, "answer": answer.to_wire()}))


def oracle_port(api_url: str, token: str, timeout: float = 30.0) -> HttpOracle:
    return HttpOracle(SyncTransport(httpx.Client(base_url=api_url, timeout=timeout), token))


def _chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        n = len(json.dumps(item)) + 1
        if out[-1] and (size + n > _CHUNK_BYTES or len(out[-1]) >= 2000):
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return [c for c in out if c]


def connect(api_url: str, token: str, timeout: float = 30.0
            ) -> tuple[HttpMarketplace, HttpRunStore, HttpImageUsage]:
    """The daemon's HTTP ports, sharing one connection pool and one provider token."""
    http = httpx.Client(base_url=api_url, timeout=timeout)
    client = HcpClient(api_url, token, http=http)
    transport = SyncTransport(http, token)
    return HttpMarketplace(client, transport), HttpRunStore(transport), HttpImageUsage(transport)
