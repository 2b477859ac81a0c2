"""A rental on the operator's own fleet: the agent puts a real GPU actor in RENTED through its
hold while the customer's container runs on the real Docker Engine, the optimizer's switch is
refused (recorded as a failed decision, never a silent requeue), and the GPU goes back to
mining when the job ends, the money split as for any rental."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import ray

from actors.agent import FleetGpuLease
from actors.gpu import GpuActor
from actors.handles import FleetClient
from actors.optimizer import RayFleetPort
from actors.options import gpu_actor_options
from hcp.config import Settings
from hcp.economics.optimizer.types import ApplyOrder
from hcp.errors import GpuBusyError
from hcp.fleet.holds import Hold
from hcp.fleet.modes import GpuMode
from hcp.fleet.repository import FleetRepository
from hcp.fleet.spec import parse_fleet_spec
from hcp.store import engine_for
from tests.integration.agent.conftest import PRICE, AgentThread, Platform
from tests.waiting import wait_until


@pytest.fixture
def fleet_gpu(ray_session: None, platform: Platform) -> Iterator[tuple[str, FleetClient, FleetRepository]]:
    gpu_id = f"rent-{uuid.uuid4().hex[:6]}"
    spec = parse_fleet_spec({"fleet": "rent", "facilities": [{
        "name": "rent-lab", "location": "test", "capacity_mw": 1, "pue": 1.2,
        "gpus": [{"id": gpu_id, "model": "H100"}]}]}, "rent")
    settings = Settings(home=platform.home / "fleet", database_url=platform.settings.database_url,
                        ray_namespace="hcp-test", checkpoint_seconds=0.5, mining_cpu_share=0.3,
                        share_difficulty=1 / 65536)
    repo = FleetRepository(engine_for(settings.resolved_database_url))
    repo.sync_fleet(spec)
    g = spec.gpus()[0]
    opts = gpu_actor_options(g, settings) | {"name": f"gpu:{gpu_id}"}
    handle = GpuActor.options(**opts).remote(g, settings)
    ray.get(handle.status.remote(), timeout=120)
    fleet = FleetClient({gpu_id: handle})
    fleet.switch(gpu_id, GpuMode.MINING, "platform start")
    yield gpu_id, fleet, repo
    for a in platform.agents:  # the agents lease this GPU: stop them before it goes
        if isinstance(a, AgentThread):
            a.close()
    ray.kill(handle, no_restart=True)


def _optimizer_order(gpu_id: str, to: str) -> ApplyOrder:
    did = f"d-{uuid.uuid4().hex[:8]}"
    return ApplyOrder(did, gpu_id, "rent-lab", "gpu", to, f"optimizer {did} BETTER_PROFIT")


def test_a_rented_fleet_gpu_is_held_for_the_job_and_refuses_the_optimizer(
        platform: Platform, fleet_gpu: tuple[str, FleetClient, FleetRepository],
        tiny_archive: tuple[bytes, str]) -> None:
    p = platform
    gpu_id, fleet, repo = fleet_gpu
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    p.agent(offer, gpu_id=gpu_id, lease=FleetGpuLease(fleet))
    job = p.instance(offer, cid, 120, "echo up; sleep 4; echo done")["id"]

    st = wait_until(lambda: (s := fleet.status(gpu_id)).mode is GpuMode.RENTED and s, timeout=60)
    # A status never shows RENTED without its holder: mode and hold are committed together.
    assert st.held_by == Hold.job(job).key and st.hashrate_hs == 0.0
    assert repo.device_state(gpu_id).held_by == f"job:{job}"  # committed, survives a restart

    # The optimizer wants the GPU mining again: the device refuses, the decision fails typed.
    with pytest.raises(GpuBusyError):
        fleet.switch(gpu_id, GpuMode.MINING, "operator")
    [res] = RayFleetPort(fleet.gpus, {}).apply([_optimizer_order(gpu_id, "INFERENCE")], 10.0)
    assert not res.ok and res.error is not None and res.error.startswith("gpu_busy")
    assert wait_until(lambda: p.get(job)["state"] == "running", timeout=30)
    assert fleet.status(gpu_id).mode is GpuMode.RENTED

    def settled() -> dict[str, Any] | None:
        inst = p.get(job)
        c = inst["container"]
        return inst if c is not None and c["phase"] in ("SETTLED", "FAILED") else None

    done = wait_until(settled, timeout=60)
    assert done["state"] == "completed" and done["container"]["exit_code"] == 0
    back = wait_until(lambda: (s := fleet.status(gpu_id)).mode is GpuMode.MINING and s, timeout=30)
    assert back.held_by is None and repo.device_state(gpu_id).held_by is None
    changes = [(e.from_mode, e.to_mode) for e in reversed(repo.events(gpu_id, "mode_change"))]
    assert changes == [("IDLE", "MINING"), ("MINING", "RENTED"), ("RENTED", "MINING")]
    # Free again: the optimizer's next decision goes through.
    [res] = RayFleetPort(fleet.gpus, {}).apply([_optimizer_order(gpu_id, "INFERENCE")], 10.0)
    assert res.ok and fleet.status(gpu_id).mode is GpuMode.INFERENCE


def test_the_agent_actor_rents_a_fleet_gpu_and_a_cap_preemption_refunds_the_rest(
        platform: Platform, fleet_gpu: tuple[str, FleetClient, FleetRepository],
        tiny_archive: tuple[bytes, str]) -> None:
    """The operator's agent as ``hcp run`` starts it (``launch_agent``: an actor over the GPU
    actors, the escrow through the ledger actor) runs the job; the optimizer's port preempts
    it for a facility power cap: the renter pays the time used, the rest comes back, and the
    GPU is back in the platform's hands."""
    from actors.agent import launch_agent, stop_agent
    from actors.escrow import launch_escrow_ledger
    from hcp.agent.settings import SlotSetting

    p = platform
    gpu_id, fleet, repo = fleet_gpu
    offer = p.offer()
    cid = p.upload(tiny_archive[0])
    namespace = f"hcp-rent-{uuid.uuid4().hex[:6]}"  # this test's own ledger and agent names
    agent_id = f"it-actor-{uuid.uuid4().hex[:6]}"
    p.agent_ids.add(agent_id)
    s = p.settings.model_copy(update={
        "home": p.home / agent_id,
        "ray": p.settings.ray.model_copy(update={"namespace": namespace}),
        "images": p.settings.images.model_copy(update={"peers": [p.url]}),
        "agent": p.settings.agent.model_copy(update={
            "agent_id": agent_id, "provider": "prov-1",
            "slots": [SlotSetting(offer_id=offer, gpu_id=gpu_id, gpu_model="H100")]})})
    ledger = launch_escrow_ledger(s)
    agent = launch_agent(s, fleet)
    try:
        renter0 = p.balance("alice")
        job = p.instance(offer, cid, 600, "echo up; sleep 60")["id"]
        wait_until(lambda: p.get(job)["state"] == "running", timeout=90)
        assert fleet.status(gpu_id).held_by == f"job:{job}"
        assert ray.get(agent.active.remote()) == {job: gpu_id}

        assert RayFleetPort(fleet.gpus, {}, namespace=namespace).preempt(
            gpu_id, f"job:{job}", "facility rent-lab power cap (test)")

        def settled() -> dict[str, Any] | None:
            inst = p.get(job)
            c = inst["container"]
            return inst if c is not None and c["phase"] in ("SETTLED", "FAILED") else None

        done = wait_until(settled, timeout=60)
        assert done["container"]["reason"] == "preempted"
        cost = int(done["final_cost"])
        assert 0 < cost < 600 * PRICE // 3600 and p.balance("alice") == renter0 - cost  # rest back
        back = wait_until(lambda: (st := fleet.status(gpu_id)).held_by is None and st, timeout=30)
        assert back.mode is GpuMode.MINING
    finally:
        stop_agent(agent)
        ray.kill(ledger, no_restart=True)


def test_a_workload_with_an_image_and_a_command_runs_on_its_gpu_and_its_output_is_kept(
        platform: Platform, fleet_gpu: tuple[str, FleetClient, FleetRepository],
        tiny_archive: tuple[bytes, str]) -> None:
    """``POST /api/v1/workloads`` with a container, as the router actor and the agent actor of
    ``hcp run`` carry it out: the router places it on the fleet's GPU and holds it, the agent
    pulls the image by CID from the image node and runs the command, the workload completes
    when the container exits, and its output stays readable."""
    from actors.agent import launch_agent, stop_agent
    from actors.router import launch_router
    from hcp.agent.store import SqlRunStore

    p = platform
    gpu_id, fleet, repo = fleet_gpu
    fleet.switch(gpu_id, GpuMode.IDLE, "free for workloads")
    cid = p.upload(tiny_archive[0])
    namespace = f"hcp-wl-{uuid.uuid4().hex[:6]}"
    agent_id = f"it-wl-{uuid.uuid4().hex[:6]}"
    p.agent_ids.add(f"{agent_id}-wl")
    s = p.settings.model_copy(update={
        "home": p.home / agent_id,
        "ray": p.settings.ray.model_copy(update={"namespace": namespace}),
        "images": p.settings.images.model_copy(update={"peers": [p.url]}),
        "agent": p.settings.agent.model_copy(update={"agent_id": agent_id, "workloads": True})})
    router = launch_router(fleet, s)
    agent = launch_agent(s, fleet, {gpu_id: "H100"})
    try:
        w = ray.get(router.submit.remote("alice", {
            "type": "batch", "priority": 5, "duration_seconds": 120,
            "container": {"image_cid": cid,
                          "command": ["/bin/sh", "-c", "echo hello from a workload; echo done >&2"]}}))
        assert w.container["image_cid"] == cid
        done = wait_until(lambda: (v := ray.get(router.get.remote(w.id))).state.terminal and v,
                          timeout=120)
        assert done.state.value == "completed", done.detail
        assert done.device_id == gpu_id and done.detail.startswith("container exited with code 0")
        assert done.gpu_ms > 0 and done.cost_micro_usd > 0  # metered from its real run time
        # ... from its container's start: the pull between placement and it is not billed.
        assert done.scheduled_at < done.container_started_at == done.started_at
        assert done.gpu_ms <= (done.finished_at - done.container_started_at) / timedelta(milliseconds=1)
        lines = SqlRunStore(engine_for(s.resolved_database_url)).read_logs(w.id, -1, 10)
        # Both streams, each line once (the Engine orders two streams' lines by time only).
        assert sorted((ln.stream, ln.text) for ln in lines) == [
            ("stderr", "done"), ("stdout", "hello from a workload")]
        assert [ln.seq for ln in lines] == [0, 1]
        # The router gave the GPU back; it stays in INFERENCE for the optimizer to decide.
        st = wait_until(lambda: (x := fleet.status(gpu_id)).held_by is None and x, timeout=30)
        assert st.mode is GpuMode.INFERENCE
    finally:
        stop_agent(agent)
        ray.kill(router, no_restart=True)
