"""The marketplace operations the instance API adds: a renter's stop, and an instance's spec
written in the job's own transaction."""

from __future__ import annotations

import pytest

from hcp.agent.messages import InstanceSpec, NetworkMode
from hcp.agent.store import instance_writer
from hcp.auth.tokens import Principal, Role
from hcp.errors import JobTransitionError, PermissionDeniedError
from hcp.marketplace.escrow_backend import ONE_TOKEN
from tests.unit.agent.conftest import CID, PROVIDER, RENTER, World


def test_stop_while_running_pays_the_time_used_and_refunds_the_rest(world: World) -> None:
    job = world.job(600)
    world.service.accept(PROVIDER, job)
    world.service.start(PROVIDER, job)
    world.clock.advance(90)
    with pytest.raises(PermissionDeniedError):
        world.service.stop(Principal("someone", Role.CUSTOMER), job)
    out = world.service.stop(RENTER, job)
    assert out.status.value == "COMPLETED" and out.final_cost == 90 * ONE_TOKEN
    assert out.settlement is not None and out.settlement.refunded == 510 * ONE_TOKEN
    assert out.settlement.to_platform == 90 * ONE_TOKEN * 2 // 100
    with pytest.raises(JobTransitionError):
        world.service.stop(RENTER, job)  # once
    with pytest.raises(JobTransitionError):
        world.service.complete(PROVIDER, job)  # and the provider cannot bill it again


def test_stop_before_start_is_a_full_refund(world: World) -> None:
    job = world.job(600)
    world.service.accept(PROVIDER, job)
    out = world.service.stop(RENTER, job)
    assert out.status.value == "CANCELLED" and out.settlement is not None
    assert out.settlement.refunded == 600 * ONE_TOKEN


def test_the_instance_spec_is_written_with_the_job(world: World) -> None:
    spec = InstanceSpec(NetworkMode.EGRESS, ("sh", "-c", "echo hi"), {"K": "v"})
    job = world.service.create_job(RENTER, world.offer_id, CID, 60,
                                   attach=instance_writer(RENTER.subject, spec, world.clock.now()))
    assert world.runs.instance_spec(job.id) == spec


def test_a_failing_attach_creates_no_job(world: World) -> None:
    def boom(session, job_id):  # type: ignore[no-untyped-def]
        raise RuntimeError("spec refused")

    with pytest.raises(RuntimeError):
        world.service.create_job(RENTER, world.offer_id, CID, 60, attach=boom)
    assert world.service.list_jobs(RENTER) == []
