"""The SDK covers every route the platform app serves, and declares every documented field."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hcp.client import aio, async_areas, calls, sync, sync_areas
from hcp.client import marketplace as mk
from hcp.client import models as m
from hcp.client import notary as nt
from hcp.client.errors import error_classes, error_from_body
from hcp.client.live import PATH as LIVE_PATH
from hcp.client.transport import Call
from hcp.errors import (
    HcpError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    ValidationError,
    WorkloadNotFoundError,
)
from tests.unit.client.support import Platform, make_platform

H = "sha256:" + "0" * 64
# One call per builder; the ones with variants (job steps, reputation reports) once per variant.
SDK_CALLS: list[Call[Any]] = [
    calls.submit_workload({"type": "batch", "priority": 1}, None), calls.get_workload("w"),
    calls.list_workloads(None, None, None, 50, None), calls.cancel_workload("w"),
    calls.workload_logs("w"),
    calls.resources(None, None), calls.set_mode("g", "MINING", "r"), calls.switches(None, 5, None),
    calls.profitability(), calls.revenue(), calls.billing(None), calls.embed("a", "m", "float"),
    calls.device_history("g", "1h"), calls.facility_history("lab", "30d"),
    calls.list_models(),
    nt.task(), nt.dataset(H), nt.submit_claim("{}", "s", b""), nt.claim("c"),
    nt.register_miner("m", "k", 1), nt.list_miners(), nt.miner("m"), nt.revoke_miner("m"),
    nt.upload_dataset(b"x"), nt.list_tasks(), nt.close_task("t"), nt.list_claims(None, 5),
    nt.create_task({"task_id": "t", "metric": "accuracy", "performance_threshold": 0.9,
                    "dataset_hash": H, "max_training_time_seconds": 1.0,
                    "expires_at": datetime(2030, 1, 1, tzinfo=UTC), "reward": 1}),
    mk.challenge("a", "renter"), mk.login("a", "n", "s"), mk.create_offer("H100", 1, 1, 1, 1, "x", True),
    mk.update_offer("o", True, None), mk.get_offer("o"), mk.search_offers(), mk.create_job("o", "c", 1),
    mk.list_jobs(None, 5), mk.get_job("j"), mk.complete_job("j", None), mk.dispute_job("j", "r"),
    mk.resolve_job("j", "user_fault"), *[mk.job_step("j", s) for s in ("accept", "start", "cancel")],
    mk.reputation("p"), *[mk.report("p", k, {}) for k in ("uptime", "penalty", "reward")],
    mk.balance(None), mk.balance("a"), mk.ledger(), mk.mint("a", 1, None),
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return make_platform(Path(tmp_path_factory.mktemp("contract")))


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


def test_every_route_of_the_app_has_an_sdk_call(platform: Platform) -> None:
    spec = platform.app.openapi()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    covered = {(c.method, path) for c in SDK_CALLS for method, path in routes
               if c.method == method and _template(path).match(c.path)}
    assert routes - covered == set()
    assert len(routes) >= 48  # platform, notary and marketplace routers are all mounted
    assert platform.app.url_path_for("live") == LIVE_PATH  # the one WebSocket route


def test_both_clients_send_every_builder() -> None:
    for module, prefix in ((calls, "calls."), (nt, "nt."), (mk, "mk.")):
        builders = [name for name, fn in inspect.getmembers(module, inspect.isfunction)
                    if fn.__module__ == module.__name__
                    and str(inspect.signature(fn).return_annotation).startswith("Call[")]
        assert builders
        for client in ((sync, sync_areas), (aio, async_areas)):
            source = "".join(inspect.getsource(c) for c in client)
            missing = [b for b in builders if f"{prefix}{b}(" not in source]
            assert missing == [], (client[0].__name__, missing)


@pytest.mark.parametrize(("schema", "model"), [
    ("WorkloadView", m.Workload), ("WorkloadPage", m.Page[m.Workload]), ("SwitchEvent", m.Event),
    ("SwitchPage", m.Page[m.Event]), ("GpuResource", m.GpuResource), ("AsicResource", m.AsicResource),
    ("Resources", m.Resources), ("SwitchResult", m.SwitchResult), ("Billing", m.Billing),
    ("Revenue", m.Revenue), ("ModelCard", m.ModelCard), ("WorkloadLogs", m.WorkloadLogs),
    ("WorkloadLogLine", m.WorkloadLogLine),
])
def test_models_declare_every_documented_field(platform: Platform, schema: str, model: Any) -> None:
    props = set(platform.app.openapi()["components"]["schemas"][schema]["properties"])
    assert props - set(model.model_fields) == set()


def test_every_hcp_error_code_maps_to_its_own_class() -> None:
    classes = error_classes()
    assert classes["workload_not_found"] is WorkloadNotFoundError
    for code, cls in classes.items():
        exc = error_from_body(cls.http_status, {"error": code, "detail": "d", "retry_after": 2})
        assert type(exc) is cls and exc.code == code and exc.detail == "d"
        assert exc.body["error"] == code  # type: ignore[attr-defined]


def test_codes_without_a_class_keep_the_code_on_their_status_family() -> None:
    exc = error_from_body(503, {"error": "sandbox_unavailable", "detail": "later"})
    assert isinstance(exc, ServiceUnavailableError) and exc.code == "sandbox_unavailable"
    exc = error_from_body(404, {"error": "not_found", "detail": "Not Found"})
    assert type(exc) is NotFoundError
    exc = error_from_body(429, {"error": "rate_limited", "detail": "slow"}, retry_after_header="7")
    assert isinstance(exc, RateLimitedError) and exc.retry_after == 7
    problems = [{"loc": ["query", "limit"], "msg": "too big", "type": "x"}]
    exc = error_from_body(422, {"error": "validation_error", "detail": problems})
    assert isinstance(exc, ValidationError) and exc.context["problems"] == problems
    assert "query.limit: too big" in exc.detail
    exc = error_from_body(500, "<html>oops</html>")
    assert type(exc) is UnexpectedResponseError and exc.http_status == 500
    assert all(issubclass(c, HcpError) for c in error_classes().values())


def test_the_sdk_offer_orders_are_the_apis() -> None:
    from hcp.marketplace.offers import SortOrder

    assert [o.value for o in mk.SortOrder] == [o.value for o in SortOrder]
