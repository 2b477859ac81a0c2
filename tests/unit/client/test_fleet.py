"""Fleet, switch history, economics, billing and embeddings through the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hcp.auth.tokens import Role
from hcp.client import AsyncHcpClient, HcpClient, RetryPolicy
from hcp.errors import (
    InvalidModeError,
    OptimizerUnavailableError,
    PermissionDeniedError,
    UnknownDeviceError,
)
from hcp.fleet.modes import GpuMode
from tests.unit.client.support import Platform, leftovers, make_platform, run


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return make_platform(Path(tmp_path_factory.mktemp("fleet")))


@pytest.fixture(scope="module")
def admin(platform: Platform) -> Iterator[HcpClient]:
    with TestClient(platform.app, base_url="http://hcp") as http:
        yield HcpClient(http=http, token=platform.token(Role.ADMIN, "ops"), sleep=lambda s: None)


def test_resources_switches_and_their_history(admin: HcpClient) -> None:
    res = admin.resources()
    assert [g.device_id for g in res.gpus] == ["g0", "g1"] and res.asics[0].id == "s21-0"
    assert res.facilities[0].facility == "lab" and res.as_of is not None
    assert leftovers(res) == []
    done = [admin.set_mode("g0", GpuMode.INFERENCE, reason="notebook"), admin.set_mode("g1", "idle"),
            admin.set_mode("g0", "MINING")]
    assert (done[0].from_mode, done[0].to_mode, done[0].noop) == ("MINING", "INFERENCE", False)
    assert done[0].total_ms > 0 and "notebook" in (done[0].reason or "")
    assert leftovers(done[0]) == []
    assert [g.device_id for g in admin.resources(mode="INFERENCE").gpus] == []
    assert [g.device_id for g in admin.resources(mode=GpuMode.IDLE).gpus] == ["g1"]
    history = list(admin.iter_switches(page_size=1))
    assert [(e.device_id, e.to_mode) for e in history] == [("g0", "MINING"), ("g1", "IDLE"),
                                                          ("g0", "INFERENCE")]  # newest first
    assert all(e.kind == "mode_change" and e.total_ms for e in history)
    assert [e.id for e in admin.iter_switches(device="g1")] == [history[1].id]
    page = admin.list_switches(limit=2)
    assert len(page.items) == 2 and page.next_cursor == str(page.items[-1].id)
    assert leftovers(history) == []


def test_refusals(platform: Platform, admin: HcpClient) -> None:
    with pytest.raises(UnknownDeviceError):
        admin.set_mode("no-such-gpu", "MINING")
    with pytest.raises(InvalidModeError):  # refused before sending: the API's own parser
        admin.set_mode("g0", "FLYING")
    with TestClient(platform.app, base_url="http://hcp") as http:
        customer = HcpClient(http=http, token=platform.token(Role.CUSTOMER, "cust"))
        with pytest.raises(PermissionDeniedError) as denied:
            customer.resources()
        assert denied.value.http_status == 403
        with pytest.raises(PermissionDeniedError):
            customer.revenue()


def test_economics_billing_and_embeddings(platform: Platform, admin: HcpClient) -> None:
    prof = admin.profitability()
    assert prof.tick is not None and prof.tick["btc_usd"] > 0
    assert prof.devices["g0"]["INFERENCE"] > prof.devices["g0"]["MINING"]
    model = admin.list_models()[0].id
    assert model == platform.harness.settings.fleet.inference_model
    texts = ["the fleet", "switches in milliseconds", "between mining and inference"]
    packed = admin.embed(texts)  # base64 float32 on the wire, decoded here
    plain = admin.embed(texts, model=model, encoding_format="float")
    assert packed.vectors == plain.vectors and len(packed.vectors) == 3
    assert np.asarray(packed.vectors).dtype == np.float64 and packed.model == model
    assert packed.prompt_tokens == packed.total_tokens > 0
    bill = admin.billing()
    assert bill.owner == "ops" and bill.inference.requests == 2
    assert bill.inference.by_model[model].input_tokens == 2 * packed.prompt_tokens
    assert set(bill.workloads.by_type) == {"inference", "embedding", "training", "batch"}
    rev = admin.revenue()
    assert rev.inference.requests >= 2 and rev.workloads.cost_micro_usd >= 0
    assert leftovers(bill) == [] and leftovers(rev) == [] and leftovers(prof) == []


def test_metrics_history_of_a_gpu_and_a_facility(platform: Platform, admin: HcpClient) -> None:
    from datetime import timedelta

    from hcp.observability.history import HistoryRecorder, SqlHistory

    clock = platform.harness.clock
    start = clock.t.replace(second=0, microsecond=0) - timedelta(minutes=3)
    rec = HistoryRecorder("g0", "lab", SqlHistory(platform.harness.repo.engine), clock)
    for s in range(0, 65, 5):
        rec.add(start + timedelta(seconds=s), 320.0, 61.0, 0.75, 2e6)
    h = admin.device_history("g0")
    assert (h.window, h.step_seconds, len(h.points), h.source) == ("1h", 60, 60, "store")
    [point] = [p for p in h.points if p.devices]
    assert (point.at, point.power_w, point.temperature_c_max) == (start, 320.0, 61.0)
    month = admin.facility_history("lab", "30d")
    assert month.step_seconds == 3600 and any(p.devices == 1 for p in month.points)
    with pytest.raises(UnknownDeviceError):
        admin.device_history("nope")
    assert leftovers(h) == [] and leftovers(point) == []


def test_a_service_that_stays_down_is_retried_then_raised(tmp_path: Path) -> None:
    p = make_platform(tmp_path)
    p.harness.economics.available = False
    waits: list[float] = []

    async def go() -> None:
        async with p.asgi() as http:
            c = AsyncHcpClient(http=http, token=p.token(Role.ADMIN, "ops"), sleep=waits.append,
                               retry=RetryPolicy(max_attempts=3))
            with pytest.raises(OptimizerUnavailableError) as down:
                await c.profitability()
            assert down.value.http_status == 503 and down.value.code == "optimizer_unavailable"
            p.harness.economics.available = True
            assert (await c.profitability()).devices

    run(go())
    assert len(waits) == 2  # three attempts, two waits
