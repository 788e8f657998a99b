"""One contract, every store: each test runs against SQLite and against DynamoDB (moto's server
over HTTP). The clock is passed in, so expiry and leases are tested without sleeping."""

from __future__ import annotations

import asyncio

import pytest

from service.auth import generate_key, hash_key
from service.ids import new_event_id
from service.store.base import ApiKey, DuplicateEventId, NewEvent, Store
from tests.store.helpers import DAY, NOW, claim, insert, make_events, record, release

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
    assert await release(store, globex, event.id, "any") == "not_found"
    assert (await claim(store, globex)).leased == []
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
    claimed = await claim(store, acme, now=later)
    assert [e.id for e in claimed.leased] == [long.id]
    assert await store.ack_events(acme, [short.id], now=later, expires_at=later + DAY) == set()
    assert await release(store, acme, short.id, "any", now=later) == "not_found"
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
