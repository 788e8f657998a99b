"""One contract, every store: each test runs against SQLite and against DynamoDB (moto's server
over HTTP). The clock is passed in, so expiry and leases are tested without sleeping."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from service.auth import generate_key, hash_key
from service.ids import new_event_id
from service.store.base import (
    ApiKey,
    DuplicateEventId,
    IdempotencyRecord,
    NewEvent,
    Store,
)

DAY = 86_400_000
NOW = int(time.time() * 1000)


def make_events(count: int, now: int = NOW, *, ttl: int = 30 * DAY) -> list[NewEvent]:
    return [
        NewEvent(new_event_id(now), now, json.dumps({"n": n}).encode(), now + ttl)
        for n in range(count)
    ]


async def insert(store: Store, tenant: str, count: int, now: int = NOW) -> list[NewEvent]:
    events = make_events(count, now)
    assert await store.insert_events(tenant, events, idempotency=None, now=now) is None
    return events


def record(key: str, body_hash: str = "h1", expires_at: int = NOW + DAY) -> IdempotencyRecord:
    return IdempotencyRecord(key, body_hash, 201, b'{"id":"x"}', expires_at)


# -- create and read --------------------------------------------------------------------------


async def test_payload_round_trips_byte_for_byte(store: Store, acme: str) -> None:
    payload = '{"b": 1.50, "a": [1e400, -0, 12345678901234567890], "s": "ñ😀\\u0000", "z": {}}'
    event = NewEvent(new_event_id(NOW), NOW, payload.encode(), NOW + DAY)
    await store.insert_events(acme, [event], idempotency=None, now=NOW)

    found = await store.get_event(acme, event.id, now=NOW)

    assert found is not None
    assert found.payload == payload.encode()
    assert (found.id, found.created_at, found.status) == (event.id, NOW, "undelivered")
    assert (found.delivered_at, found.attempts, found.lease_expires_at) == (None, 0, None)


async def test_another_tenants_event_is_invisible(store: Store, acme: str, globex: str) -> None:
    [event] = await insert(store, acme, 1)

    assert await store.get_event(globex, event.id, now=NOW) is None
    assert await store.list_events(globex, status=None, limit=10, after=None, now=NOW) == (
        [],
        False,
    )
    assert await store.ack_events(globex, [event.id], now=NOW, expires_at=NOW + DAY) == set()
    assert await store.delete_event(globex, event.id, now=NOW) is False
    assert await store.release_event(globex, event.id, now=NOW) == "not_found"
    assert await store.claim_events(globex, limit=10, lease_until=NOW + 1, now=NOW) == []
    assert await store.get_event(acme, event.id, now=NOW) is not None


async def test_batch_insert_is_all_or_nothing(store: Store, acme: str) -> None:
    [existing] = await insert(store, acme, 1)
    batch = make_events(4)
    # The last item reuses an existing id: its conditional write fails, so nothing may stay.
    batch[-1] = NewEvent(existing.id, NOW, b"{}", NOW + DAY)

    with pytest.raises(DuplicateEventId):
        await store.insert_events(acme, batch, idempotency=None, now=NOW)

    events, _ = await store.list_events(acme, status=None, limit=100, after=None, now=NOW)
    assert [e.id for e in events] == [existing.id]


async def test_a_failed_write_does_not_fail_the_writes_beside_it(store: Store, acme: str) -> None:
    [existing] = await insert(store, acme, 1)
    doomed = [*make_events(2), NewEvent(existing.id, NOW, b"{}", NOW + DAY)]
    good = [make_events(1) for _ in range(8)]

    results = await asyncio.gather(
        store.insert_events(acme, doomed, idempotency=None, now=NOW),
        *(store.insert_events(acme, events, idempotency=None, now=NOW) for events in good),
        return_exceptions=True,
    )

    assert isinstance(results[0], DuplicateEventId)
    assert results[1:] == [None] * 8
    page, _ = await store.list_events(acme, status=None, limit=100, after=None, now=NOW)
    assert {e.id for e in page} == {existing.id} | {e[0].id for e in good}


# -- listing ----------------------------------------------------------------------------------


async def test_list_without_status_is_newest_first_and_pages_cover_everything(
    store: Store, acme: str
) -> None:
    ids = [e.id for e in await insert(store, acme, 7)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page, more = await store.list_events(acme, status=None, limit=3, after=after, now=NOW)
        seen += [e.id for e in page]
        pages += 1
        if not more:
            break
        after = page[-1].id

    assert seen == ids[::-1]
    assert pages == 3


async def test_list_by_status_is_oldest_first_and_last_page_says_no_more(
    store: Store, acme: str
) -> None:
    ids = [e.id for e in await insert(store, acme, 6)]
    await store.ack_events(acme, [ids[1], ids[4]], now=NOW, expires_at=NOW + DAY)

    first, more = await store.list_events(acme, status="undelivered", limit=2, after=None, now=NOW)
    second, more2 = await store.list_events(
        acme, status="undelivered", limit=2, after=first[-1].id, now=NOW
    )
    delivered, more3 = await store.list_events(
        acme, status="delivered", limit=2, after=None, now=NOW
    )

    assert [e.id for e in first + second] == [ids[0], ids[2], ids[3], ids[5]]
    assert (more, more2) == (True, False)
    assert [e.id for e in delivered] == [ids[1], ids[4]]
    assert more3 is False
    assert all(e.status == "delivered" and e.delivered_at == NOW for e in delivered)


async def test_list_sees_only_its_tenant(store: Store, acme: str, globex: str) -> None:
    await insert(store, globex, 3)
    mine = [e.id for e in await insert(store, acme, 2)]

    page, more = await store.list_events(acme, status=None, limit=50, after=None, now=NOW)

    assert [e.id for e in page] == mine[::-1]
    assert more is False


# -- retention --------------------------------------------------------------------------------


async def test_expired_events_are_never_served(store: Store, acme: str) -> None:
    short = NewEvent(new_event_id(NOW), NOW, b'{"short":1}', NOW + 1000)
    long = NewEvent(new_event_id(NOW), NOW, b'{"long":1}', NOW + DAY)
    await store.insert_events(acme, [short, long], idempotency=None, now=NOW)
    later = NOW + 1000

    assert await store.get_event(acme, short.id, now=later) is None
    for status in (None, "undelivered"):
        page, _ = await store.list_events(acme, status=status, limit=10, after=None, now=later)
        assert [e.id for e in page] == [long.id]
    claimed = await store.claim_events(acme, limit=10, lease_until=later + 5, now=later)
    assert [e.id for e in claimed] == [long.id]
    assert await store.ack_events(acme, [short.id], now=later, expires_at=later + DAY) == set()
    assert await store.release_event(acme, short.id, now=later) == "not_found"
    assert await store.delete_event(acme, short.id, now=later) is False


async def test_ack_sets_the_delivered_retention(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    await store.ack_events(acme, [event.id], now=NOW, expires_at=NOW + 7 * DAY)

    assert await store.get_event(acme, event.id, now=NOW + 7 * DAY - 1) is not None
    assert await store.get_event(acme, event.id, now=NOW + 7 * DAY) is None


# -- ack and delete ---------------------------------------------------------------------------


async def test_ack_is_idempotent_and_reports_unknown_ids(
    store: Store, acme: str, globex: str
) -> None:
    a, b = await insert(store, acme, 2)
    [other] = await insert(store, globex, 1)
    unknown = new_event_id(NOW)

    first = await store.ack_events(acme, [a.id, unknown, other.id], now=NOW, expires_at=NOW + DAY)
    again = await store.ack_events(acme, [a.id, b.id], now=NOW + 5, expires_at=NOW + DAY)

    assert first == {a.id}
    assert again == {a.id, b.id}
    event = await store.get_event(acme, a.id, now=NOW + 10)
    assert event is not None
    assert (event.status, event.delivered_at) == ("delivered", NOW)


async def test_delete_removes_the_event_once(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)

    assert await store.delete_event(acme, event.id, now=NOW) is True
    assert await store.delete_event(acme, event.id, now=NOW) is False
    assert await store.get_event(acme, event.id, now=NOW) is None


async def test_ack_racing_delete_never_resurrects_the_event(store: Store, acme: str) -> None:
    events = await insert(store, acme, 10)
    for event in events:
        _, deleted = await asyncio.gather(
            store.ack_events(acme, [event.id], now=NOW, expires_at=NOW + DAY),
            store.delete_event(acme, event.id, now=NOW),
        )
        assert deleted is True
        assert await store.get_event(acme, event.id, now=NOW) is None
        page, _ = await store.list_events(acme, status="delivered", limit=50, after=None, now=NOW)
        assert event.id not in [e.id for e in page]


# -- leases -----------------------------------------------------------------------------------


async def test_claim_leases_oldest_first_and_excludes_other_claims(store: Store, acme: str) -> None:
    ids = [e.id for e in await insert(store, acme, 5)]

    first = await store.claim_events(acme, limit=3, lease_until=NOW + 30_000, now=NOW)
    second = await store.claim_events(acme, limit=10, lease_until=NOW + 30_000, now=NOW + 1)
    third = await store.claim_events(acme, limit=10, lease_until=NOW + 30_000, now=NOW + 2)

    assert [e.id for e in first] == ids[:3]
    assert [e.id for e in second] == ids[3:]
    assert third == []
    assert all(e.attempts == 1 and e.lease_expires_at == NOW + 30_000 for e in first)
    listed, _ = await store.list_events(acme, status="undelivered", limit=10, after=None, now=NOW)
    assert [e.id for e in listed] == ids  # listing shows leased events and leases nothing


async def test_an_expired_lease_makes_the_event_claimable_again(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    await store.claim_events(acme, limit=1, lease_until=NOW + 1000, now=NOW)

    assert await store.claim_events(acme, limit=1, lease_until=NOW + 2000, now=NOW + 999) == []
    [again] = await store.claim_events(acme, limit=1, lease_until=NOW + 5000, now=NOW + 1000)

    assert again.id == event.id
    assert again.attempts == 2
    assert again.lease_expires_at == NOW + 5000
    seen = await store.get_event(acme, event.id, now=NOW + 5000)
    assert seen is not None
    assert seen.lease_expires_at is None  # the lease has run out by then


async def test_ack_ends_delivery_for_good(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    await store.claim_events(acme, limit=1, lease_until=NOW + 1000, now=NOW)
    await store.ack_events(acme, [event.id], now=NOW + 1, expires_at=NOW + DAY)

    assert await store.claim_events(acme, limit=1, lease_until=NOW + 9000, now=NOW + 5000) == []
    acked = await store.get_event(acme, event.id, now=NOW + 2)
    assert acked is not None
    assert (acked.status, acked.lease_expires_at, acked.attempts) == ("delivered", None, 1)


async def test_release_makes_the_event_claimable_at_once(store: Store, acme: str) -> None:
    a, b = await insert(store, acme, 2)
    await store.claim_events(acme, limit=2, lease_until=NOW + 60_000, now=NOW)
    await store.ack_events(acme, [b.id], now=NOW, expires_at=NOW + DAY)

    assert await store.release_event(acme, a.id, now=NOW + 1) == "released"
    assert await store.release_event(acme, b.id, now=NOW + 1) == "already_delivered"
    assert await store.release_event(acme, new_event_id(NOW), now=NOW + 1) == "not_found"
    [again] = await store.claim_events(acme, limit=5, lease_until=NOW + 60_000, now=NOW + 2)
    assert (again.id, again.attempts) == (a.id, 2)


async def test_concurrent_claims_never_overlap(store: Store, acme: str) -> None:
    ids = {e.id for e in await insert(store, acme, 30)}

    results = await asyncio.gather(
        *(store.claim_events(acme, limit=4, lease_until=NOW + 60_000, now=NOW) for _ in range(12))
    )

    claimed = [e.id for batch in results for e in batch]
    assert len(claimed) == len(set(claimed)) == 30
    assert set(claimed) == ids


async def test_two_store_instances_never_lease_the_same_event(
    store: Store, store_factory: Callable[[], Store], acme: str
) -> None:
    # A second client on the same file or tables, as a second service process would have.
    async with store_factory() as twin:
        ids = {e.id for e in await insert(store, acme, 20)}
        results = await asyncio.gather(
            *(
                s.claim_events(acme, limit=3, lease_until=NOW + 60_000, now=NOW)
                for s in [store, twin] * 5
            )
        )
    claimed = [e.id for batch in results for e in batch]
    assert len(claimed) == len(set(claimed)) == 20
    assert set(claimed) == ids


# -- idempotency ------------------------------------------------------------------------------


async def test_idempotency_record_is_written_with_the_events(store: Store, acme: str) -> None:
    first = make_events(2)
    again = make_events(2)

    assert await store.insert_events(acme, first, idempotency=record("k1"), now=NOW) is None
    existing = await store.insert_events(acme, again, idempotency=record("k1", "h2"), now=NOW)

    assert existing == record("k1")
    page, _ = await store.list_events(acme, status=None, limit=10, after=None, now=NOW)
    assert {e.id for e in page} == {e.id for e in first}


async def test_idempotency_keys_are_per_tenant(store: Store, acme: str, globex: str) -> None:
    assert await store.insert_events(acme, make_events(1), idempotency=record("k"), now=NOW) is None
    assert (
        await store.insert_events(globex, make_events(1), idempotency=record("k"), now=NOW) is None
    )


async def test_an_expired_idempotency_record_no_longer_counts(store: Store, acme: str) -> None:
    await store.insert_events(
        acme, make_events(1), idempotency=record("k", expires_at=NOW + 10), now=NOW
    )

    later = NOW + 10
    fresh = make_events(1, later)
    assert await store.insert_events(acme, fresh, idempotency=record("k", "h9"), now=later) is None
    again = await store.insert_events(acme, make_events(1), idempotency=record("k"), now=later)
    assert again == record("k", "h9")


async def test_concurrent_inserts_with_one_key_store_exactly_one(store: Store, acme: str) -> None:
    attempts = [make_events(1) for _ in range(16)]

    results = await asyncio.gather(
        *(store.insert_events(acme, a, idempotency=record("same"), now=NOW) for a in attempts)
    )

    assert sum(r is None for r in results) == 1
    assert all(r == record("same") for r in results if r is not None)
    page, _ = await store.list_events(acme, status=None, limit=100, after=None, now=NOW)
    assert len(page) == 1


# -- API keys and secrets ---------------------------------------------------------------------


async def test_api_keys_can_be_stored_listed_and_revoked(
    store: Store, acme: str, globex: str
) -> None:
    key = ApiKey(hash_key(generate_key()), acme, True, NOW)
    other = ApiKey(hash_key(generate_key()), globex, True, NOW)
    unknown = hash_key(generate_key())
    await store.put_api_key(key)
    await store.put_api_key(other)

    assert await store.get_api_key(key.key_hash) == key
    assert await store.get_api_key(unknown) is None
    assert await store.revoke_api_key(key.key_hash) is True
    assert await store.revoke_api_key(unknown) is False
    revoked = await store.get_api_key(key.key_hash)
    assert revoked is not None
    assert revoked.active is False
    # The listing holds every key in the store (the session's other tests' too).
    listed = {k.key_hash: k for k in await store.list_api_keys()}
    assert listed[key.key_hash] == revoked
    assert listed[other.key_hash] == other
    assert unknown not in listed


async def test_shared_secret_is_stable(store: Store) -> None:
    first = await store.shared_secret()
    assert len(first) >= 32
    assert await store.shared_secret() == first


async def test_ping_answers_when_the_store_is_up(store: Store) -> None:
    await store.ping()
