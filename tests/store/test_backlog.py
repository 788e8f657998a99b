"""The backlog (`GET /v1/stats`) on every store: counts that follow every change, and the oldest
undelivered event exactly."""

from __future__ import annotations

from service.ids import new_event_id
from service.store.base import Backlog, NewEvent, Store
from tests.store.helpers import DAY, NOW, claim, insert, release


async def counts(store: Store, tenant: str, now: int = NOW) -> tuple[int, int, int, int | None]:
    backlog: Backlog = await store.backlog(tenant, now=now)
    assert backlog.as_of <= now
    return backlog.undelivered, backlog.in_flight, backlog.dead, backlog.oldest_undelivered_at


async def test_an_empty_tenant_has_no_backlog(store: Store, acme: str) -> None:
    assert await counts(store, acme) == (0, 0, 0, None)


async def test_the_backlog_follows_claims_releases_acks_deaths_and_redrives(
    store: Store, acme: str, globex: str
) -> None:
    a, b, c, d = await insert(store, acme, 4)
    await insert(store, globex, 2, now=NOW - 5)
    assert await counts(store, acme) == (4, 0, 0, NOW)

    leased = {e.id: e for e in (await claim(store, acme, limit=3)).leased}
    assert await counts(store, acme) == (4, 3, 0, NOW)

    await store.ack_events(acme, [a.id], now=NOW + 1, expires_at=NOW + DAY)
    token = leased[b.id].lease_token
    assert token is not None
    await release(store, acme, b.id, token, available_at=NOW + 600_000, now=NOW + 2)
    assert await counts(store, acme, NOW + 3) == (3, 1, 0, NOW)

    # c's lease runs out (over a minute ago: leases count by the minute they end in), and a
    # claim allowing one attempt makes it dead, and leases d.
    later = NOW + 100_000
    found = await claim(store, acme, max_attempts=1, now=later)
    assert found.dead == [c.id]
    assert await counts(store, acme, later + 1) == (2, 1, 1, NOW)

    await store.redrive_events(acme, [c.id], now=later + 2)
    assert await counts(store, acme, later + 3) == (3, 1, 0, NOW)
    await store.delete_event(acme, d.id, now=later + 4)
    assert await counts(store, acme, later + 5) == (2, 0, 0, NOW)
    assert await counts(store, globex) == (2, 0, 0, NOW - 5)


async def test_a_lease_stops_counting_as_in_flight_when_it_runs_out(
    store: Store, acme: str
) -> None:
    await insert(store, acme, 2)
    [_, second] = (await claim(store, acme, lease_ms=60_000)).leased
    token = second.lease_token
    assert token is not None
    await store.extend_lease(acme, second.id, token=token, lease_until=NOW + 600_000, now=NOW)

    assert (await store.backlog(acme, now=NOW + 1)).in_flight == 2
    # Counted by the minute they end in: at most a minute late.
    assert (await store.backlog(acme, now=NOW + 120_001)).in_flight == 1
    assert (await store.backlog(acme, now=NOW + 660_001)).in_flight == 0


async def test_the_oldest_is_the_oldest_still_undelivered(store: Store, acme: str) -> None:
    old = await insert(store, acme, 2, now=NOW - 3)
    await insert(store, acme, 1)

    await store.ack_events(acme, [old[0].id], now=NOW, expires_at=NOW + DAY)
    await store.delete_event(acme, old[1].id, now=NOW)

    assert (await store.backlog(acme, now=NOW)).oldest_undelivered_at == NOW


async def test_a_sweep_counts_expired_undelivered_and_dead_events_out(
    store: Store, acme: str
) -> None:
    short = [NewEvent(new_event_id(NOW), NOW, b"{}", NOW + 1_000) for _ in range(3)]
    await store.insert_events(acme, short, idempotency=None, now=NOW)
    found = await claim(store, acme, limit=1, max_attempts=1)  # leases short[0]
    assert found.leased[0].id == short[0].id
    token = found.leased[0].lease_token
    assert token is not None
    await release(store, acme, short[0].id, token, now=NOW + 1)
    assert (await claim(store, acme, limit=1, max_attempts=1, now=NOW + 2)).dead == [short[0].id]
    assert await counts(store, acme, NOW + 3) == (2, 1, 1, NOW)

    # Made more than the retention ago, as every sweep finds its expired events; one event made
    # with them but kept longer stays. (Ids made in the future would make every later id in
    # this process sort after them.)
    later = NOW + 30 * DAY + 1
    kept = NewEvent(new_event_id(NOW), NOW, b"{}", later + DAY)
    await store.insert_events(acme, [kept], idempotency=None, now=NOW)
    swept = await store.sweep_expired(acme, now=later)

    assert swept == 3
    backlog = await store.backlog(acme, now=later)
    assert (backlog.undelivered, backlog.dead) == (1, 0)
