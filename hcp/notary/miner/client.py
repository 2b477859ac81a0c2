"""HTTP client of the notary's ML-Chain v6 endpoints, with retry and backoff on submit."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from hcp.notary.miner.claim import SignedClaim
from hcp.notary.miner.errors import NotaryRequestError
from hcp.notary.reference_task import sha256_hash

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Task:
    task_id: str
    performance_threshold: float
    metric: str
    dataset_hash: str
    max_training_time_seconds: float
    expires_at: datetime | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Task:
        try:
            expires = body.get("expires_at")
            return cls(str(body["task_id"]), float(body["performance_threshold"]),
                       str(body.get("metric", "")), str(body["dataset_hash"]),
                       float(body["max_training_time_seconds"]),
                       datetime.fromisoformat(expires) if expires else None,
                       body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotaryRequestError(f"malformed task from the notary: {exc}", body=body) from exc


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a 429's ``retry_after`` is honoured when it fits."""

    max_attempts: int = 5
    base_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_wait_seconds: float = 120.0  # a longer retry_after is reported, not slept through

    def backoff(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.max_backoff_seconds, self.base_seconds * 2 ** (attempt - 1))
        return raw * (0.5 + rng.random() / 2)


@dataclass(frozen=True)
class SubmitOutcome:
    status_code: int | None  # None: never got an answer
    body: dict[str, Any]
    attempts: int
    waited_seconds: float

    @property
    def verified(self) -> bool:
        return self.status_code == 202 and self.body.get("status") == "verified"

    @property
    def error(self) -> str | None:
        return None if self.verified else str(self.body.get("error", "unknown"))


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {"error": "non_json_response", "detail": resp.text[:500]}
    return body if isinstance(body, dict) else {"error": "unexpected_response", "detail": body}


def _retry_after(resp: httpx.Response, body: dict[str, Any]) -> float | None:
    for value in (body.get("retry_after"), resp.headers.get("Retry-After")):
        try:
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return None


class NotaryClient:
    """One notary endpoint. ``http`` is injectable (tests pass an ASGI or mock transport)."""

    def __init__(self, base_url: str, *, token: str | None = None,
                 http: httpx.Client | None = None, timeout: float = 120.0,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token = token
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random(seed)

    def close(self) -> None:
        self.http.close()

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _get(self, path: str) -> httpx.Response:
        try:
            return self.http.get(self._url(path))
        except httpx.HTTPError as exc:
            raise NotaryRequestError(f"notary unreachable at {self.base_url}: {exc}") from exc

    def get_task(self) -> Task:
        resp = self._get("/api/v1/task")
        if resp.status_code != 200:
            body = _json(resp)
            raise NotaryRequestError(f"GET /api/v1/task answered {resp.status_code}: "
                                     f"{body.get('error')}", resp.status_code, body)
        return Task.from_json(_json(resp))

    def get_dataset(self, dataset_hash: str) -> bytes:
        """The task's dataset, checked against its hash (a notary cannot hand out other data)."""
        resp = self._get(f"/api/v1/datasets/{dataset_hash}")
        if resp.status_code != 200:
            body = _json(resp)
            raise NotaryRequestError(f"dataset {dataset_hash} not available "
                                     f"({resp.status_code} {body.get('error')})",
                                     resp.status_code, body)
        if sha256_hash(resp.content) != dataset_hash:
            raise NotaryRequestError(f"dataset bytes do not match {dataset_hash}")
        return resp.content

    def register_miner(self, miner_id: str, public_key_hex: str, stake: int) -> dict[str, Any]:
        """Admin call: register a miner's public key with its stake (needs an admin token)."""
        if not self.token:
            raise NotaryRequestError("registering a miner needs an admin token (HCP_TOKEN)")
        try:
            resp = self.http.post(self._url("/api/v1/admin/miners"),
                                  json={"miner_id": miner_id, "public_key": public_key_hex,
                                        "stake": stake},
                                  headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            raise NotaryRequestError(f"notary unreachable at {self.base_url}: {exc}") from exc
        body = _json(resp)
        if resp.status_code not in (200, 201):
            raise NotaryRequestError(f"registration refused ({resp.status_code} "
                                     f"{body.get('error')}: {body.get('detail')})",
                                     resp.status_code, body)
        return body

    def submit(self, claim: SignedClaim) -> SubmitOutcome:
        """POST the claim; retry 429/503 and transport errors with backoff.

        Retries resend the same signed claim: the notary rate-limits before the nonce stage and
        releases a nonce it refused with 503, so a retry is not a replay. If a response is lost
        after the notary recorded the claim, the retry answers ``replay_detected``; the outcome
        then says so.
        """
        waited = 0.0
        lost_response = False
        last: SubmitOutcome | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                resp = self.http.post(
                    self._url("/api/v1/submit"),
                    data={"payload": claim.payload_json, "signature": claim.signature},
                    files={"artifact": ("artifact.tar.gz", claim.artifact, "application/gzip")})
            except httpx.HTTPError as exc:
                lost_response = True
                last = SubmitOutcome(None, {"error": "unreachable", "detail": str(exc)},
                                     attempt, waited)
                delay = self.retry.backoff(attempt, self._rng)
            else:
                body = _json(resp)
                if lost_response and body.get("error") == "replay_detected":
                    body = {**body, "note": "an earlier attempt whose response was lost "
                                            "probably recorded this claim"}
                last = SubmitOutcome(resp.status_code, body, attempt, waited)
                if resp.status_code not in RETRY_STATUSES:
                    return last
                hinted = _retry_after(resp, body)
                if hinted is not None and hinted > self.retry.max_wait_seconds:
                    log.info("notary asks to wait %.0fs; not retrying", hinted)
                    return last
                delay = hinted if hinted is not None else self.retry.backoff(attempt, self._rng)
            if attempt == self.retry.max_attempts:
                break
            log.info("submit attempt %d: %s; retrying in %.2fs", attempt,
                     last.body.get("error"), delay)
            self._sleep(delay)
            waited += delay
        assert last is not None
        return last
