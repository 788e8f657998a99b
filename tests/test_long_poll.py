"""Long polls on both stores: many waiting claims share one store check, an event wakes as many
waiters as it can serve, and every poll answers within its wait plus a second."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service.notifier import RECHECK_SECONDS
from tests.conftest import Api, create


async def poll(api: Api, wait: int) -> tuple[list[dict[str, Any]], float]:
    started = time.monotonic()
    response = await api.client.post(
        "/v1/events/claim", json={"wait_seconds": wait, "limit": 1}, headers=api.acme
    )
    assert response.status_code == 200, response.text
    return response.json()["events"], time.monotonic() - started


async def test_waiting_claims_of_a_tenant_share_one_store_check(api: Api) -> None:
    notifier = api.ctx.notifier
    looks_before = notifier.looks[api.tenant]

    results = await asyncio.gather(*(poll(api, 2) for _ in range(40)))

    assert all(events == [] for events, _ in results)
    # One look a second while anyone waits, not one per waiting claim.
    looks = notifier.looks[api.tenant] - looks_before
    assert 1 <= looks <= 2 / RECHECK_SECONDS + 1


async def test_an_event_wakes_one_waiter_and_the_others_keep_waiting(api: Api) -> None:
    waiting = [asyncio.create_task(poll(api, 3)) for _ in range(10)]
    while api.ctx.notifier.waiting < 10:  # noqa: ASYNC110 - the claims reach the notifier
        await asyncio.sleep(0.01)

    event_id = await create(api, {"n": 1})

    done, pending = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    [winner] = done
    assert [e["id"] for e in winner.result()[0]] == [event_id]
    assert len(pending) == 9
    results = await asyncio.gather(*pending)
    assert all(events == [] for events, _ in results)


async def test_a_long_poll_answers_within_its_wait_and_a_second(api: Api) -> None:
    events, elapsed = await poll(api, 1)

    assert events == []
    assert 1 <= elapsed < 1 + 1
