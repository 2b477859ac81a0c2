"""The indexer actor follows anvil into the store and resumes from its cursor after a crash."""

from __future__ import annotations

import time
from pathlib import Path

import ray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actors.indexer import launch_indexer, wait_for_block
from hcp.config import Settings
from hcp.marketplace.chain.ids import job_key
from hcp.marketplace.chain.models import ChainEvent, ChainJob
from hcp.marketplace.chain.stack import ChainStack
from hcp.store import engine_for, migrate
from hcp.store.db import connect


def test_actor_follows_and_resumes_after_a_kill(ray_session: None, anvil_settings: Settings,
                                                anvil_stack: ChainStack, tmp_path: Path) -> None:
    settings = anvil_settings.with_(database_url=f"sqlite:///{tmp_path / 'indexer.db'}",
                                    chain_poll_seconds=0.2, ray_namespace="hcp-test-indexer")
    e = anvil_stack.escrow
    e.mint("renter", 5000, "faucet")
    e.lock("a", "renter", "prov", 1000)
    migrate(engine_for(settings.resolved_database_url))  # the platform's launch does this first
    handle = launch_indexer(settings)
    try:
        first = wait_for_block(handle, anvil_stack.client.block_number())
        engine = connect(settings.resolved_database_url)
        with Session(engine) as s:
            before = s.scalar(select(func.count()).select_from(ChainEvent))
        assert before > 0

        ray.kill(handle, no_restart=False)  # crash; Ray restarts it from its options
        _wait_for_new_process(handle, first.pid)
        e.release("a", 250)
        head = anvil_stack.client.block_number()
        st = wait_for_block(handle, head)
        assert st.last_error is None and st.pid != first.pid  # a new process resumed
        with Session(engine) as s:
            rows = s.execute(select(ChainEvent.tx_hash, ChainEvent.log_index)).all()
            job = s.get(ChainJob, "0x" + job_key("a").hex())
        assert len(rows) == len(set(rows)) > before  # nothing indexed twice, new events in
        assert job is not None and (job.status, job.final_cost, job.refunded) == ("RELEASED", 250, 750)
        engine.dispose()
    finally:
        ray.kill(handle, no_restart=True)


def _wait_for_new_process(handle, old_pid: int, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """``ray.kill`` is asynchronous: wait until a different process answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ray.get(handle.status.remote(), timeout=5).pid != old_pid:
                return
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                ray.exceptions.GetTimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("the indexer actor was not restarted in time")
