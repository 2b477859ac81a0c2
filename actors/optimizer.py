"""The optimizer actor: a thin Ray shell running ``OptimizerService.step`` on a schedule.

Decisions go to the fleet through ``RayFleetPort``: every order is sent first (GPU actors'
``switch``, facility actors' ``set_asic_mode``), then all are awaited together up to the apply
timeout. Restart safety lives in ``hcp.economics.optimizer.service``; a restarted actor picks up the
policy's dwell state and settles any decision left unacknowledged by the crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import ray

from actors.handles import FleetClient, as_hcp_error, get
from actors.options import ActorName, optimizer_actor_name, optimizer_actor_options
from hcp.config import Settings
from hcp.economics.market.source import PriceFeed
from hcp.economics.optimizer import OptimizerRepository, OptimizerService
from hcp.economics.optimizer.economics import FleetProfit
from hcp.economics.optimizer.types import (
    ApplyOrder,
    ApplyResult,
    DecisionOutcome,
    OptimizerStatus,
    OutcomeRecord,
    PolicyLike,
    Profitability,
    StepResult,
)
from hcp.errors import HcpError, NotFoundError
from hcp.fleet.holds import Hold, HoldKind
from hcp.fleet.spec import FleetSpec
from hcp.fleet.status import SwitchResult
from hcp.logging_setup import configure_for
from hcp.observability.optimizer import record_gpu_hour, record_step
from hcp.store import engine_for

log = logging.getLogger(__name__)


class RayFleetPort:
    """``FleetPort`` over the fleet's typed handles: all orders first, then one bounded wait."""

    def __init__(self, gpus: dict[str, Any], facilities: dict[str, Any],
                 asic_facility: dict[str, str] | None = None, namespace: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self._fleet = FleetClient(dict(gpus), dict(facilities), dict(asic_facility or {}))
        self._namespace = namespace
        self._timeout_s = timeout_s

    def preempt(self, device_id: str, holder: str, reason: str) -> bool:
        """Stop the holder of ``device_id``: a job through the provider agent that runs it (paid
        for the time it ran, the rest refunded), a workload through the router (requeued)."""
        hold = Hold.parse(holder)
        if hold is None or self._namespace is None:
            return False
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                 if a.get("namespace") == self._namespace]
        if hold.kind is HoldKind.JOB:
            agents = [n for n in names if ActorName.split(n) is not None
                      and ActorName.split(n)[0] is ActorName.AGENT]  # type: ignore[index]
            for n in agents:
                h = ray.get_actor(n, namespace=self._namespace)
                if get(h.preempt.remote(device_id, reason), f"agent {n}", self._timeout_s):
                    return True
            return False
        if ActorName.ROUTER.value not in names:
            return False
        router = ray.get_actor(ActorName.ROUTER.value, namespace=self._namespace)
        return bool(get(router.preempt.remote(device_id, hold.id, reason), "router", self._timeout_s))

    def apply(self, orders: Sequence[ApplyOrder], timeout_s: float) -> list[ApplyResult]:
        t0 = time.perf_counter()
        results: dict[str, ApplyResult] = {}
        in_flight: dict[Any, ApplyOrder] = {}
        for o in orders:
            try:
                if o.kind != "gpu":
                    self._fleet.asic_facility.setdefault(o.device_id, o.facility)
                # The decision id travels as the change's correlation id: a restarted optimizer
                # finds the device's commit by it, not by text in the reason.
                ref = self._fleet.switch_ref(o.device_id, o.to_mode, o.reason, o.decision_id)
            except (KeyError, HcpError) as exc:
                results[o.decision_id] = ApplyResult(o.decision_id, False, None,
                                                     error=f"no actor for {o.kind} {o.device_id!r}: {exc}"[:300])
                continue
            except ray.exceptions.RayError as exc:  # the handle itself is gone
                results[o.decision_id] = ApplyResult(
                    o.decision_id, False, None, error=as_hcp_error(exc, o.device_id).detail[:300])
                continue
            in_flight[ref] = o
        pending = list(in_flight)
        deadline = t0 + timeout_s
        while pending:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            ready, pending = ray.wait(pending, num_returns=1, timeout=remaining)
            acked = time.perf_counter()
            for ref in ready:
                o = in_flight[ref]
                results[o.decision_id] = _result(o, ref, (acked - t0) * 1e3)
        for ref in pending:  # still running: recorded as a timeout, never re-sent
            o = in_flight[ref]
            results[o.decision_id] = ApplyResult(o.decision_id, False, None, timed_out=True,
                                                 error=f"no acknowledgement within {timeout_s:g} s")
        return [results[o.decision_id] for o in orders]


def _result(o: ApplyOrder, ref: Any, latency_ms: float) -> ApplyResult:
    try:
        r: SwitchResult = get(ref, f"{o.kind} {o.device_id}", 0)
    except HcpError as exc:  # refused by the device, or the device did not answer
        return ApplyResult(o.decision_id, False, latency_ms, error=f"{exc.code}: {exc.detail}"[:300])
    return ApplyResult(o.decision_id, True, latency_ms, generation=r.generation, noop=r.noop)


@ray.remote
class OptimizerActor:
    def __init__(self, spec: FleetSpec, settings: Settings, gpus: dict[str, Any], facilities: dict[str, Any],
                 feed: PriceFeed | None = None, policy: PolicyLike | None = None,
                 autostart: bool = True) -> None:
        from hcp.economics.optimizer.feeds import live_policy_params, make_feed
        from hcp.economics.policy import FleetPolicy

        configure_for(settings)
        engine = engine_for(settings.resolved_database_url)
        params = live_policy_params(settings)
        self._repo = OptimizerRepository(engine)
        self._service = OptimizerService(
            feed=feed if feed is not None else make_feed(settings, spec),
            policy=policy if policy is not None else FleetPolicy.from_fleet_spec(spec, params),
            profit=FleetProfit.from_fleet_spec(spec, params),
            port=RayFleetPort(gpus, facilities, namespace=settings.ray.namespace), repo=self._repo,
            apply_timeout_s=settings.optimizer.apply_timeout_seconds)
        self._service.recover()
        self._interval = settings.optimizer.interval_seconds
        from actors.metrics_sink import RaySink

        self._sink = RaySink()
        self._models = {d.id: d.model for d in (*spec.gpus(), *spec.asics())}
        self._lock = threading.Lock()  # one step at a time: the loop and step_now share the service
        self._stop = threading.Event()
        self._running = threading.Event()
        self._last: StepResult | None = None
        self._steps = 0
        self._errors = 0
        self._thread = threading.Thread(target=self._loop, name="optimizer", daemon=True)
        self._thread.start()
        if autostart:
            self._running.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(timeout=0.5):
                continue
            t0 = time.monotonic()
            try:
                self._step()
            except Exception:  # a failed step (store down, bad tick) must not end the schedule
                self._errors += 1
                log.exception("optimizer step failed; next one in %.1f s", self._interval)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - t0)))

    def _step(self) -> StepResult:
        with self._lock:
            t0 = time.perf_counter()
            r = self._service.step()
            self._last = r
            self._steps += 1
            self._record(r, time.perf_counter() - t0)
            return r

    def _record(self, r: StepResult, duration_s: float) -> None:
        try:
            record_step(self._sink, r, duration_s, self._interval)
            rates = self._service.hourly_rates() if r.skipped is None else None
            if rates is not None:
                record_gpu_hour(self._sink, *rates, model_of=self._models)
        except Exception:  # metrics must never fail a step whose decisions are committed
            log.exception("optimizer metrics failed")

    # -- remote API -----------------------------------------------------------------------
    def step_now(self) -> StepResult:
        """Run one step at once (tests, benchmarks, an operator's nudge)."""
        return self._step()

    def reconcile(self) -> list[OutcomeRecord]:
        """Settle issued decisions whose apply timeout has passed (the schedule does it too)."""
        with self._lock:
            return self._service.reconcile()

    def pause(self) -> None:
        self._running.clear()
        with self._lock:  # returns once a step in progress has finished
            pass

    def resume(self) -> None:
        self._running.set()

    def status(self) -> OptimizerStatus:
        import os

        last = self._service.last_step
        return OptimizerStatus(self._running.is_set(), self._interval, self._steps, self._errors,
                               last.tick_at if last else None,
                               last.realized_profit_micro_usd if last else None, self._last,
                               os.getpid())

    def recent(self, limit: int = 20) -> list[DecisionOutcome]:
        """The latest decisions with their outcomes, from the store (they survive restarts)."""
        return [DecisionOutcome(d, o) for d, o in self._repo.decisions(limit=limit)]

    def profitability(self) -> Profitability:
        return self._service.profitability()

    def pid(self) -> int:
        import os

        return os.getpid()

    def shutdown(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(timeout=30)


def launch_optimizer(spec: FleetSpec, settings: Settings, gpus: dict[str, Any], facilities: dict[str, Any],
                     *, feed: PriceFeed | None = None, policy: PolicyLike | None = None,
                     autostart: bool = True, name: str | None = None) -> Any:
    """Start the optimizer actor over a running fleet's handles; returns once it is up."""
    opts = optimizer_actor_options(settings)
    if name is not None:
        opts["name"] = name
    handle = OptimizerActor.options(**opts).remote(spec, settings, gpus, facilities, feed, policy, autostart)
    ray.get(handle.status.remote())  # surfaces constructor failures (store down, bad spec) here
    return handle


def find_optimizer(settings: Settings) -> Any:
    """The running optimizer's handle, by name, from any driver connected to the cluster."""
    try:
        return ray.get_actor(optimizer_actor_name(), namespace=settings.ray.namespace)
    except ValueError:
        raise NotFoundError(f"no optimizer is running in Ray namespace {settings.ray.namespace!r}") from None


def stop_optimizer(handle: Any) -> None:
    try:
        ray.get(handle.shutdown.remote(), timeout=30)
    except Exception:  # stopping anyway
        log.exception("optimizer did not stop cleanly")
    ray.kill(handle, no_restart=True)
