"""The delivery contract, every store: claims and their lease tokens, release (with a delay and an
error), extend, dead letters and redrive, and the races between them. The clock is passed in, so
leases and delays are tested without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from service.ids import new_event_id
from service.store.base import Claim, Store
from tests.store.helpers import DAY, NOW, claim, insert, release

# -- claims -------------------------------------------------------------------------------------


async def test_claim_leases_oldest_first_and_excludes_other_claims(store: Store, acme: str) -> None:
    ids = [e.id for e in await insert(store, acme, 5)]

    first = await claim(store, acme, limit=3)
    second = await claim(store, acme, limit=10, now=NOW + 1)
    third = await claim(store, acme, limit=10, now=NOW + 2)

    assert [e.id for e in first.leased] == ids[:3]
    assert [e.id for e in second.leased] == ids[3:]
    assert third == Claim([], [])
    assert all(e.attempts == 1 and e.lease_expires_at == NOW + 30_000 for e in first.leased)
    listed, _ = await store.list_events(acme, status="undelivered", limit=10, after=None, now=NOW)
    assert [e.id for e in listed] == ids  # listing shows leased events and leases nothing


async def test_every_lease_gets_its_own_random_token_shown_only_in_the_claim(
    store: Store, acme: str
) -> None:
    [event] = await insert(store, acme, 1)

    [first] = (await claim(store, acme, lease_ms=1000)).leased
    [second] = (await claim(store, acme, now=NOW + 1000)).leased

    tokens = [first.lease_token, second.lease_token]
    assert all(token is not None and len(token) * 6 >= 96 for token in tokens)  # base64 text
    assert tokens[0] != tokens[1]
    got = await store.get_event(acme, event.id, now=NOW + 1000)
    listed, _ = await store.list_events(acme, status=None, limit=10, after=None, now=NOW + 1000)
    assert got is not None
    assert got.lease_token is None
    assert [e.lease_token for e in listed] == [None]


async def test_an_expired_lease_makes_the_event_claimable_again(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    await claim(store, acme, limit=1, lease_ms=1000)

    assert (await claim(store, acme, now=NOW + 999)).leased == []
    [again] = (await claim(store, acme, lease_ms=4000, now=NOW + 1000)).leased

    assert again.id == event.id
    assert again.attempts == 2
    assert again.lease_expires_at == NOW + 5000
    seen = await store.get_event(acme, event.id, now=NOW + 5000)
    assert seen is not None
    assert seen.lease_expires_at is None  # the lease has run out by then


async def test_ack_needs_no_token_and_ends_delivery_for_good(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    [leased] = (await claim(store, acme, lease_ms=1000)).leased
    await store.ack_events(acme, [event.id], now=NOW + 1, expires_at=NOW + DAY)

    assert (await claim(store, acme, now=NOW + 5000)).leased == []
    assert leased.lease_token is not None
    assert await release(store, acme, event.id, leased.lease_token) == "already_delivered"
    extended = await store.extend_lease(
        acme, event.id, token=leased.lease_token, lease_until=NOW + 9000, now=NOW + 2
    )
    assert extended == "already_delivered"
    acked = await store.get_event(acme, event.id, now=NOW + 2)
    assert acked is not None
    assert (acked.status, acked.lease_expires_at, acked.attempts) == ("delivered", None, 1)


# -- release ------------------------------------------------------------------------------------


async def test_release_needs_the_current_token_and_a_stale_one_changes_nothing(
    store: Store, acme: str
) -> None:
    [event] = await insert(store, acme, 1)
    [first] = (await claim(store, acme, lease_ms=1000)).leased
    assert first.lease_token is not None

    assert await release(store, acme, event.id, "not-the-token", now=NOW + 1) == "lease_lost"
    assert (await claim(store, acme, now=NOW + 2)).leased == []  # still leased
    [second] = (await claim(store, acme, lease_ms=60_000, now=NOW + 1000)).leased  # lease ended
    stale = await release(store, acme, event.id, first.lease_token, error="late", now=NOW + 1001)

    assert stale == "lease_lost"
    held = await store.get_event(acme, event.id, now=NOW + 1001)
    assert held is not None
    assert (held.lease_expires_at, held.last_error) == (NOW + 61_000, None)
    assert second.lease_token is not None
    assert await release(store, acme, event.id, second.lease_token, now=NOW + 1002) == "released"
    assert await release(store, acme, event.id, second.lease_token, now=NOW + 1003) == "lease_lost"
    [third] = (await claim(store, acme, now=NOW + 1004)).leased
    assert (third.id, third.attempts) == (event.id, 3)


async def test_release_after_the_lease_ran_out_succeeds_when_nobody_claimed_since(
    store: Store, acme: str
) -> None:
    [event] = await insert(store, acme, 1)
    [leased] = (await claim(store, acme, lease_ms=1000)).leased
    assert leased.lease_token is not None

    outcome = await release(store, acme, event.id, leased.lease_token, now=NOW + 5000)

    assert outcome == "released"


async def test_release_with_a_delay_holds_the_event_back_and_keeps_the_error(
    store: Store, acme: str
) -> None:
    [event] = await insert(store, acme, 1)
    [leased] = (await claim(store, acme)).leased
    assert leased.lease_token is not None

    outcome = await release(
        store, acme, event.id, leased.lease_token, available_at=NOW + 10_000, error="boom"
    )

    assert outcome == "released"
    held = await store.get_event(acme, event.id, now=NOW + 1)
    assert held is not None
    assert (held.available_at, held.lease_expires_at, held.last_error) == (
        NOW + 10_000,
        None,
        "boom",
    )
    assert (await claim(store, acme, now=NOW + 9_999)).leased == []
    [again] = (await claim(store, acme, now=NOW + 10_000)).leased
    assert (again.id, again.available_at, again.last_error) == (event.id, None, "boom")
    # A release that reports no error keeps the last one.
    assert again.lease_token is not None
    await release(store, acme, event.id, again.lease_token, now=NOW + 10_001)
    kept = await store.get_event(acme, event.id, now=NOW + 10_002)
    assert kept is not None
    assert (kept.last_error, kept.available_at) == ("boom", None)


async def test_release_of_unknown_and_other_tenants_events_is_not_found(
    store: Store, acme: str, globex: str
) -> None:
    [event] = await insert(store, acme, 1)
    [leased] = (await claim(store, acme)).leased
    assert leased.lease_token is not None

    assert await release(store, globex, event.id, leased.lease_token) == "not_found"
    assert await release(store, acme, new_event_id(NOW), leased.lease_token) == "not_found"


# -- extend -------------------------------------------------------------------------------------


async def test_extend_moves_the_end_of_the_current_lease_only(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    [leased] = (await claim(store, acme, lease_ms=1000)).leased
    assert leased.lease_token is not None
    token = leased.lease_token

    extended = await store.extend_lease(
        acme, event.id, token=token, lease_until=NOW + 60_000, now=NOW + 500
    )
    stale = await store.extend_lease(
        acme, event.id, token="not-the-token", lease_until=NOW + 99_000, now=NOW + 501
    )

    assert (extended, stale) == ("extended", "lease_lost")
    assert (await claim(store, acme, now=NOW + 59_999)).leased == []
    seen = await store.get_event(acme, event.id, now=NOW + 502)
    assert seen is not None
    assert seen.lease_expires_at == NOW + 60_000
    # After its end, with nobody claiming since, the same lease can still be extended.
    late = await store.extend_lease(
        acme, event.id, token=token, lease_until=NOW + 90_000, now=NOW + 70_000
    )
    assert late == "extended"
    unknown = await store.extend_lease(
        acme, new_event_id(NOW), token=token, lease_until=NOW + 1, now=NOW
    )
    assert unknown == "not_found"


# -- dead letters and redrive -----------------------------------------------------------------


async def exhaust(store: Store, tenant: str, event_id: str, attempts: int, now: int) -> None:
    """Claim and release the event `attempts` times, each release reporting an error."""
    for n in range(attempts):
        [leased] = (await claim(store, tenant, limit=1, now=now + n)).leased
        assert leased.id == event_id
        assert leased.lease_token is not None
        await release(store, tenant, event_id, leased.lease_token, error=f"try {n}", now=now + n)


async def test_an_event_claimed_max_attempts_times_becomes_dead_instead(
    store: Store, acme: str
) -> None:
    poison, fine = await insert(store, acme, 2)
    await exhaust(store, acme, poison.id, 2, NOW)

    found = await claim(store, acme, max_attempts=2, now=NOW + 10)

    assert [e.id for e in found.leased] == [fine.id]
    assert found.dead == [poison.id]
    dead = await store.get_event(acme, poison.id, now=NOW + 11)
    assert dead is not None
    assert (dead.status, dead.attempts, dead.last_error, dead.lease_expires_at) == (
        "dead",
        2,
        "try 1",
        None,
    )
    listed, _ = await store.list_events(acme, status="dead", limit=10, after=None, now=NOW + 11)
    undelivered, _ = await store.list_events(
        acme, status="undelivered", limit=10, after=None, now=NOW + 11
    )
    assert [e.id for e in listed] == [poison.id]
    assert [e.id for e in undelivered] == [fine.id]
    later = await claim(store, acme, max_attempts=1000, now=NOW + 100_000)
    # Dead events are never claimed, whatever the limit (the other one's lease ran out).
    assert ([e.id for e in later.leased], later.dead) == ([fine.id], [])


async def test_dead_events_expire_like_undelivered_ones(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    await exhaust(store, acme, event.id, 1, NOW)
    await claim(store, acme, max_attempts=1, now=NOW + 5)

    assert await store.get_event(acme, event.id, now=NOW + 30 * DAY - 1) is not None
    assert await store.get_event(acme, event.id, now=NOW + 30 * DAY) is None


async def test_redrive_makes_a_dead_event_claimable_with_no_attempts(
    store: Store, acme: str, globex: str
) -> None:
    dead, live, acked = await insert(store, acme, 3)
    await exhaust(store, acme, dead.id, 1, NOW)
    await claim(store, acme, max_attempts=1, now=NOW + 5)  # leases live and acked, kills dead
    await store.ack_events(acme, [acked.id], now=NOW + 6, expires_at=NOW + DAY)
    unknown = new_event_id(NOW)

    outcomes = await store.redrive_events(acme, [dead.id, live.id, acked.id, unknown], now=NOW + 7)

    assert outcomes == {
        dead.id: "redriven",
        live.id: "redriven",  # undelivered: nothing to change
        acked.id: "already_delivered",
        unknown: "not_found",
    }
    back = await store.get_event(acme, dead.id, now=NOW + 8)
    assert back is not None
    assert (back.status, back.attempts, back.last_error) == ("undelivered", 0, "try 0")
    still = await store.get_event(acme, live.id, now=NOW + 8)
    assert still is not None
    assert (still.attempts, still.lease_expires_at) == (1, NOW + 5 + 30_000)
    [again] = (await claim(store, acme, max_attempts=1, now=NOW + 9)).leased
    assert (again.id, again.attempts) == (dead.id, 1)
    assert await store.redrive_events(globex, [dead.id], now=NOW + 10) == {dead.id: "not_found"}


async def test_ack_delivers_a_dead_event(store: Store, acme: str) -> None:
    [event] = await insert(store, acme, 1)
    await exhaust(store, acme, event.id, 1, NOW)
    await claim(store, acme, max_attempts=1, now=NOW + 5)

    assert await store.ack_events(acme, [event.id], now=NOW + 6, expires_at=NOW + DAY) == {event.id}
    acked = await store.get_event(acme, event.id, now=NOW + 7)
    assert acked is not None
    assert acked.status == "delivered"


# -- races --------------------------------------------------------------------------------------


async def test_concurrent_claims_never_overlap(store: Store, acme: str) -> None:
    ids = {e.id for e in await insert(store, acme, 30)}

    results = await asyncio.gather(*(claim(store, acme, limit=4) for _ in range(12)))

    claimed = [e.id for result in results for e in result.leased]
    assert len(claimed) == len(set(claimed)) == 30
    assert set(claimed) == ids


async def test_two_store_instances_never_lease_the_same_event(
    store: Store, store_factory: Callable[[], Store], acme: str
) -> None:
    # A second client on the same file or tables, as a second service process would have.
    async with store_factory() as twin:
        ids = {e.id for e in await insert(store, acme, 20)}
        results = await asyncio.gather(*(claim(s, acme, limit=3) for s in [store, twin] * 5))
    claimed = [e.id for result in results for e in result.leased]
    assert len(claimed) == len(set(claimed)) == 20
    assert set(claimed) == ids


async def test_a_stale_release_racing_a_fresh_claim_never_ends_the_new_lease(
    store: Store, acme: str
) -> None:
    later = NOW + 1000  # when the first lease has run out
    outcomes = set()
    for n in range(8):  # a tenant per round, so each claim can only find that round's event
        tenant = f"{acme}-{n}"
        [event] = await insert(store, tenant, 1)
        [old] = (await claim(store, tenant, lease_ms=1000)).leased
        assert old.lease_token is not None

        stale, fresh = await asyncio.gather(
            release(store, tenant, event.id, old.lease_token, now=later),
            claim(store, tenant, lease_ms=60_000, now=later),
        )

        # Either the release came first (then the claim leased the event anew) or the claim did
        # (then the release's token was stale): in both, the new lease holds.
        outcomes.add(stale)
        [lease] = fresh.leased
        assert lease.lease_token is not None
        kept = await store.extend_lease(
            tenant, event.id, token=lease.lease_token, lease_until=later + 90_000, now=later
        )
        assert kept == "extended"
    assert outcomes <= {"released", "lease_lost"}


async def test_extend_racing_expiry_and_a_new_claim_has_one_winner(store: Store, acme: str) -> None:
    expired = NOW + 1000
    for n in range(8):  # a tenant per round, so each claim can only find that round's event
        tenant = f"{acme}-{n}"
        [event] = await insert(store, tenant, 1)
        [lease] = (await claim(store, tenant, lease_ms=1000)).leased
        assert lease.lease_token is not None

        extended, taken = await asyncio.gather(
            store.extend_lease(
                tenant, event.id, token=lease.lease_token, lease_until=expired + 60_000, now=expired
            ),
            claim(store, tenant, lease_ms=60_000, now=expired),
        )

        assert extended in ("extended", "lease_lost")
        assert (extended == "extended") != bool(taken.leased)


async def test_many_claimers_at_max_attempts_make_one_dead_transition_and_lease_nothing(
    store: Store, acme: str
) -> None:
    [event] = await insert(store, acme, 1)
    await exhaust(store, acme, event.id, 3, NOW)

    results = await asyncio.gather(
        *(claim(store, acme, max_attempts=3, now=NOW + 10) for _ in range(16))
    )

    assert [d for result in results for d in result.dead] == [event.id]
    assert [e for result in results for e in result.leased] == []
    dead = await store.get_event(acme, event.id, now=NOW + 11)
    assert dead is not None
    assert (dead.status, dead.attempts) == ("dead", 3)
