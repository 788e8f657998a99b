"""The heartbeat extends the leases of running handlers, on a virtual clock against scripted
answers (the real-process tests show a slow handler running once)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.worker.conftest import Script, VirtualClock
from worker.decoding import Claimed
from worker.heartbeat import RETRY_SECONDS, Heartbeat
from worker.leases import Lease
from worker.tally import Tally

EXTENDED = httpx.Response(200, json={"lease_expires_at": 1764086430000})
LEASE = 30


def lease(event_id: str = "evt_1", claimed_at: float = 0.0) -> Lease:
    claimed = Claimed(event_id, f"lt_{event_id}", 1, {"id": event_id})
    return Lease.granted(claimed, claimed_at, LEASE)


MakeHeartbeat = Callable[..., tuple[Heartbeat, list[httpx.Request], VirtualClock, Tally]]


@pytest.fixture
async def heartbeat(scripted: Script) -> AsyncIterator[MakeHeartbeat]:
    made: list[Heartbeat] = []

    def make(
        *answers: httpx.Response,
    ) -> tuple[Heartbeat, list[httpx.Request], VirtualClock, Tally]:
        clock = VirtualClock()
        api, requests = scripted(*answers, clock=clock)
        tally = Tally()
        beat = Heartbeat(api, "acme", LEASE, tally, clock=clock)
        made.append(beat)
        return beat, requests, clock, tally

    yield make
    for beat in made:
        await beat.close()


async def sweep(beat: Heartbeat) -> None:
    """Sweep, and let the extensions it started get their answers."""
    beat.sweep()
    await answered(beat)


async def answered(beat: Heartbeat) -> None:
    while beat.in_flight:  # noqa: ASYNC110 - the answers come from a MockTransport, at once
        await asyncio.sleep(0)


async def test_a_lease_is_extended_each_time_a_third_of_it_is_left(
    heartbeat: MakeHeartbeat,
) -> None:
    beat, requests, clock, tally = heartbeat(EXTENDED, EXTENDED)
    held = lease()
    beat.watch(held)

    clock.now = 19.9
    await sweep(beat)
    assert requests == []

    clock.now = 20.0
    await sweep(beat)
    [first] = requests
    assert first.url.path == "/v1/events/evt_1/extend"
    assert json.loads(first.read()) == {"lease_token": "lt_evt_1", "lease_seconds": LEASE}
    assert held.expires == 50.0

    clock.now = 40.0
    await sweep(beat)
    assert len(requests) == 2
    assert held.expires == 70.0
    assert held.extensions == 2
    assert tally.extended == 2


async def test_one_sweep_extends_every_lease_that_is_due_and_no_other(
    heartbeat: MakeHeartbeat,
) -> None:
    beat, requests, clock, tally = heartbeat(EXTENDED, EXTENDED)
    leases = [lease("evt_1", 0.0), lease("evt_2", 1.0), lease("evt_3", 5.0), lease("evt_4", 0.0)]
    for held in leases:
        beat.watch(held)
    beat.forget(leases[3])  # its handler finished

    clock.now = 21.0
    await sweep(beat)

    assert sorted(r.url.path for r in requests) == [
        "/v1/events/evt_1/extend",
        "/v1/events/evt_2/extend",
    ]
    assert tally.extended == 2


async def test_a_lost_lease_is_given_up_and_not_extended_again(
    heartbeat: MakeHeartbeat, caplog: pytest.LogCaptureFixture
) -> None:
    lost = httpx.Response(409, json={"status": 409, "code": "lease_lost"})
    beat, requests, clock, tally = heartbeat(lost)
    held = lease()
    beat.watch(held)

    clock.now = 25.0
    await sweep(beat)
    clock.now = 100.0
    await sweep(beat)

    assert len(requests) == 1
    assert held.lost == "lease_lost"
    assert tally.leases_lost == 1
    assert tally.extended == 0
    assert any("lease lost" in r.getMessage() for r in caplog.records)


async def test_an_extension_that_meets_only_transient_errors_is_tried_again_soon(
    heartbeat: MakeHeartbeat,
) -> None:
    # Busy for longer than the lease has left, then reachable.
    busy = httpx.Response(503, headers={"Retry-After": "1"})
    beat, requests, clock, tally = heartbeat(busy, EXTENDED)
    held = lease()
    beat.watch(held)

    clock.now = 29.5
    await sweep(beat)
    assert tally.extended == 0
    assert held.renew_at == clock.now + RETRY_SECONDS  # soon, not at the next third

    clock.now = held.renew_at
    await sweep(beat)
    assert tally.extended == 1
    assert requests[-1].url.path == "/v1/events/evt_1/extend"


async def test_an_answer_for_a_handler_that_finished_meanwhile_changes_nothing(
    heartbeat: MakeHeartbeat, caplog: pytest.LogCaptureFixture
) -> None:
    delivered = httpx.Response(409, json={"status": 409, "code": "already_delivered"})
    beat, requests, clock, tally = heartbeat(delivered)
    held = lease()
    beat.watch(held)

    clock.now = 25.0
    beat.sweep()  # the extension is under way...
    beat.forget(held)  # ...when the handler returns and its event is acknowledged
    await answered(beat)

    assert len(requests) == 1
    assert held.lost is None
    assert tally.leases_lost == 0
    assert not any("lease" in r.getMessage() for r in caplog.records)
