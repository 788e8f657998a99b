"""DynamoDB at scale: write units per event, Query calls per claim, and one tenant's ingest rate
under a per-partition write budget, 16 shards against 1.

Runs the DynamoDB store in this process against tests/moto_server.py, which bills every write as
DynamoDB does (`--meter`) and throttles each partition-key value (`--partition-wcu`); see
docs/DESIGN-NOTES.md, "Write units". Prints each figure next to its target.

    uv run python bench/dynamodb_scale.py [--events 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

from service.ids import new_event_id  # noqa: E402
from service.store.base import NewEvent, StoreUnavailable  # noqa: E402
from service.store.dynamodb import DynamoStore  # noqa: E402
from service.store.tables import create_tables  # noqa: E402
from tests.conftest import moto_server  # noqa: E402

DAY = 86_400_000
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


def order(size: int) -> bytes:
    """A realistic JSON event of about `size` bytes: an order with line items, random ids."""

    def token(n: int) -> str:
        return uuid.uuid4().hex[:n]

    event: dict[str, object] = {
        "event_type": "order.paid",
        "id": f"ord_{token(24)}",
        "customer": {
            "id": f"cus_{token(14)}",
            "email": f"{random.choice(WORDS)}.{token(6)}@example.com",
            "name": f"{random.choice(WORDS).title()} {random.choice(WORDS).title()}",
        },
        "currency": "usd",
        "created": 1764086400 + random.randint(0, 10**6),
        "lines": [],
    }
    lines: list[object] = event["lines"]  # type: ignore[assignment]
    while len(json.dumps(event)) < size:
        lines.append(
            {
                "id": f"li_{token(20)}",
                "sku": f"SKU-{random.randint(1000, 99999)}",
                "description": " ".join(random.choices(WORDS, k=4)),
                "quantity": random.randint(1, 9),
                "unit_amount": random.randint(100, 99999),
                "metadata": {"warehouse": random.choice(WORDS), "ref": token(12)},
            }
        )
    return json.dumps(event).encode()


@contextmanager
def dynamodb(*options: str) -> Iterator[str]:
    with moto_server(*options) as endpoint:
        yield endpoint


async def new_store(endpoint: str, shards: int = 1) -> DynamoStore:
    events, keys = f"Events-{uuid.uuid4().hex[:8]}", f"Keys-{uuid.uuid4().hex[:8]}"
    await create_tables(events, keys, endpoint_url=endpoint, region="us-east-1")
    store = DynamoStore(events_table=events, keys_table=keys, endpoint_url=endpoint, shards=shards)
    await store.start()
    return store


def meter(endpoint: str, reset: bool = False) -> dict[str, object]:
    url = f"{endpoint}/_meter" + ("/reset" if reset else "")
    answer: dict[str, object] = (httpx.post(url) if reset else httpx.get(url)).json()
    return answer


def table_wcu(counts: dict[str, object], table: str) -> int:
    entry = counts["tables"][table]  # type: ignore[index]
    return int(entry["wcu"]) + sum(int(i["wcu"]) for i in entry["indexes"].values())


def counters_wcu(counts: dict[str, object], table: str) -> int:
    """The write units of the backlog counters' items (`C#<tenant>`) in `table`."""
    entry = counts["tables"][table]  # type: ignore[index]
    scopes = [entry, *entry["indexes"].values()]
    return sum(
        int(usage["wcu"])
        for scope in scopes
        for value, usage in scope["partitions"].items()
        if value.startswith("C#")
    )


async def lifecycle_wcu(endpoint: str, size: int, events: int) -> tuple[float, int, int]:
    """Write units per event for create (single, coalesced) + claim + ack, without the backlog
    counters; the counters' write units (a few per flush, however many events it counts); and
    the payload's size."""
    store = await new_store(endpoint)
    tenant = "acme"
    try:
        await store.get_event(tenant, new_event_id(0), now=0)  # read the shard plan first
        payloads = [order(size) for _ in range(events)]
        meter(endpoint, reset=True)
        now = int(time.time() * 1000)
        news = [NewEvent(new_event_id(now), now, p, now + 30 * DAY) for p in payloads]
        await asyncio.gather(
            *(store.insert_events(tenant, [e], idempotency=None, now=now) for e in news)
        )
        leased = []
        while len(leased) < events:
            found = await store.claim_events(
                tenant, limit=100, lease_until=now + 60_000, max_attempts=10, now=now
            )
            leased += found.leased
        for start in range(0, events, 100):
            ids = [e.id for e in leased[start : start + 100]]
            await store.ack_events(tenant, ids, now=now, expires_at=now + 7 * DAY)
        await store.counters.flush()
        counts = meter(endpoint)
        counters = counters_wcu(counts, store._events)
        per_event = (table_wcu(counts, store._events) - counters) / events
        return per_event, counters, len(payloads[0])
    finally:
        await store.close()


async def claim_queries(endpoint: str, leased_ahead: int, shards: int) -> int:
    store = await new_store(endpoint, shards)
    try:
        now = int(time.time() * 1000)
        events = [
            NewEvent(new_event_id(now), now, b'{"n": 1}', now + DAY)
            for _ in range(leased_ahead + 1)
        ]
        for start in range(0, len(events), 50):
            await store.insert_events("acme", events[start : start + 50], idempotency=None, now=now)
        taken = 0
        while taken < leased_ahead:
            found = await store.claim_events(
                "acme",
                limit=min(100, leased_ahead - taken),
                lease_until=now + 600_000,
                max_attempts=10,
                now=now,
            )
            taken += len(found.leased)
        meter(endpoint, reset=True)
        found = await store.claim_events(
            "acme", limit=1, lease_until=now + 600_000, max_attempts=10, now=now
        )
        assert len(found.leased) == 1
        counts = meter(endpoint)
        return int(counts["tables"][store._events]["calls"].get("Query", 0))  # type: ignore[index]
    finally:
        await store.close()


async def ingest_rate(endpoint: str, shards: int, seconds: float, producers: int = 16) -> float:
    """Events a second one tenant gets stored with batches of 50, however many are refused."""
    store = await new_store(endpoint, shards)
    stored = 0
    payload = order(1000)
    try:
        await store.get_event("acme", new_event_id(0), now=0)
        deadline = time.monotonic() + seconds

        async def produce() -> None:
            nonlocal stored
            while time.monotonic() < deadline:
                now = int(time.time() * 1000)
                batch = [NewEvent(new_event_id(now), now, payload, now + DAY) for _ in range(50)]
                try:
                    await store.insert_events("acme", batch, idempotency=None, now=now)
                    stored += len(batch)
                except StoreUnavailable:
                    await asyncio.sleep(0.05)

        started = time.monotonic()
        await asyncio.gather(*(produce() for _ in range(producers)))
        return stored / (time.monotonic() - started)
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partition-wcu", type=float, default=100.0)
    args = parser.parse_args()
    with dynamodb("--meter") as endpoint:
        for size, target in ((1024, 10), (10 * 1024, 20)):
            wcu, counters, actual = await lifecycle_wcu(endpoint, size, args.events)
            print(
                f"write units per event lifecycle (create + claim + ack), {actual}-byte payload:"
                f" {wcu:.2f}  (target <= {target}); backlog counters: {counters} for all"
                f" {args.events} events ({counters / args.events:.3f} each)"
            )
        for shards in (1, 4):
            queries = await claim_queries(endpoint, 1200, shards)
            print(
                f"Query calls for claim(limit=1) with 1,200 leased ahead, {shards} shard(s):"
                f" {queries}  (target <= 3)"
            )
    rates = {}
    for shards in (1, 16):
        with dynamodb("--partition-wcu", str(args.partition_wcu)) as endpoint:
            rates[shards] = await ingest_rate(endpoint, shards, args.seconds)
        print(
            f"one tenant's batch ingest under {args.partition_wcu:g} WCU/s per partition,"
            f" {shards} shard(s): {rates[shards]:,.0f} events/s"
        )
    print(f"16 shards / 1 shard: {rates[16] / rates[1]:.1f}x  (target >= 8x)")


if __name__ == "__main__":
    asyncio.run(main())
