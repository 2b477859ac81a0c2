"""The provider's caching policy, driven by a fake clock and a fake job table."""

from __future__ import annotations

from datetime import timedelta

from hcp.images.policy import CacheAction, CachePolicy, ImageUsage
from tests.unit.images.conftest import ManualClock


class Jobs:
    def __init__(self) -> None:
        self.usage: dict[str, ImageUsage] = {}

    def run(self, cid: str, clock: ManualClock, n: int = 1) -> None:
        prev = self.usage.get(cid)
        self.usage[cid] = ImageUsage(cid, (prev.uses if prev else 0) + n, clock.now())

    def image_usage(self):  # type: ignore[no-untyped-def]
        return list(self.usage.values())


class Pins:
    def __init__(self, initial: set[str] | None = None) -> None:
        self.set = set(initial or ())

    def pin(self, cid: str) -> None:
        self.set.add(cid)

    def unpin(self, cid: str) -> bool:
        had = cid in self.set
        self.set.discard(cid)
        return had

    def pinned(self) -> set[str]:
        return set(self.set)


def test_pins_the_ten_most_used_every_five_minutes() -> None:
    clock, jobs, pins = ManualClock(), Jobs(), Pins()
    policy = CachePolicy(jobs, clock)
    for i in range(15):
        jobs.run(f"img{i:02d}", clock, n=i + 1)
    policy.step(pins)
    assert pins.pinned() == {f"img{i:02d}" for i in range(5, 15)}
    jobs.run("img00", clock, n=100)
    clock.advance(minutes=4)
    assert policy.step(pins) == []  # not due yet
    clock.advance(minutes=1)
    done = policy.step(pins)
    assert [(d.action, d.cid) for d, outcome in done] == [(CacheAction.PIN, "img00")]
    assert "img00" in pins.pinned()


def test_unpins_images_unused_for_30_days_but_not_others_pins() -> None:
    clock, jobs = ManualClock(), Jobs()
    pins = Pins({"operator-pinned"})
    policy = CachePolicy(jobs, clock, top_n=1)
    jobs.run("old", clock, n=5)
    policy.step(pins)
    assert "old" in pins.pinned()
    clock.advance(days=29)
    jobs.run("new", clock, n=6)  # now the top one; "old" is no longer in the top 1
    policy.step(pins)
    assert pins.pinned() == {"operator-pinned", "old", "new"}
    clock.advance(days=1, minutes=5)
    decisions = policy.decide(pins.pinned())
    assert [(d.action, d.cid) for d in decisions] == [(CacheAction.UNPIN, "old")]
    policy.apply(decisions, pins)
    assert pins.pinned() == {"operator-pinned", "new"}
    assert policy.interval == timedelta(minutes=5)


def test_marketplace_jobs_feed_the_policy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hcp.images.usage import MarketplaceJobUsage
    from hcp.store.db import connect, migrate

    engine = connect(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    from sqlalchemy import insert

    from hcp.marketplace.models import Job, Offer

    clock = ManualClock()
    v0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    v1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    with engine.begin() as conn:
        conn.execute(insert(Offer).values(id="o", provider="p", gpu_model="H100", vcpu=1, memory_gb=1,
                                          storage_gb=1, price_per_hour=1, location="x", available=True,
                                          reputation=500, created_at=clock.now()))
        for i, cid in enumerate([v0, v0, v1.upper(), v1]):
            conn.execute(insert(Job).values(id=f"j{i}", offer_id="o", renter="r", provider="p",
                                            image_cid=cid, price_per_hour=1, estimated_seconds=1,
                                            max_cost=1, status="COMPLETED",
                                            created_at=clock.now() + timedelta(hours=i)))
    usage = {u.cid: u for u in MarketplaceJobUsage(engine).image_usage()}
    assert {c: u.uses for c, u in usage.items()} == {v0: 2, v1: 2}
    assert usage[v1].last_used == clock.now() + timedelta(hours=3)
