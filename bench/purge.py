"""Purge benchmark: POST /v1/events latency while the embedded store deletes expired rows.

Fills a fresh SQLite store with `--expired` expired events (200,000 by default), then sends
single-event POSTs from `--producers` concurrent clients through the app (in process, over
httpx's ASGI transport) while `purge_expired` runs, and prints the POSTs' p50/p99/max and how
long the purge took. Target: p99 under 50 ms.

    uv run python bench/purge.py [--expired 200000] [--producers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from service.app import create_app
from service.auth import mint_key
from service.ids import new_event_id
from service.settings import Settings

PAYLOAD = b'{"event_type": "customer.created", "email": "alice@acme.example", "n": 1}'


def fill(db: Path, expired: int, now: int) -> None:
    """Expired events written straight into the file (the schema is the store's)."""
    with sqlite3.connect(db) as connection:
        rows = [("old", new_event_id(now), now - 1, PAYLOAD, now - 1) for _ in range(expired)]
        connection.executemany(
            "INSERT INTO events (tenant, id, created_at, payload, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )


async def produce(client: httpx.AsyncClient, key: str, stop: asyncio.Event) -> list[float]:
    latencies = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.post("/v1/events", content=PAYLOAD, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    return latencies


def summary(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return (
        f"{len(latencies)} POSTs, p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms,"
        f" max {max(latencies):.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expired", type=int, default=200_000)
    parser.add_argument("--producers", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "purge.db"
        app = create_app(Settings(db=str(db), access_log=False))
        async with app.router.lifespan_context(app) as state:
            ctx = state["ctx"]
            key = await mint_key(ctx.store, "acme")
            now = int(time.time() * 1000)
            await asyncio.to_thread(fill, db, args.expired, now)

            async def with_state(scope, receive, send):  # type: ignore[no-untyped-def]
                scope["state"] = dict(state)
                await app(scope, receive, send)

            transport = httpx.ASGITransport(app=with_state)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                stop = asyncio.Event()
                quiet = [asyncio.create_task(produce(client, key, stop)) for _ in range(4)]
                await asyncio.sleep(2)
                stop.set()
                baseline = [t for batch in await asyncio.gather(*quiet) for t in batch]

                stop = asyncio.Event()
                producers = [
                    asyncio.create_task(produce(client, key, stop)) for _ in range(args.producers)
                ]
                await asyncio.sleep(0.5)
                started = time.perf_counter()
                # The app's store is wrapped for metrics; the purge is the SQLite store's own.
                sqlite_store = getattr(ctx.store, "_store", ctx.store)
                purged = await sqlite_store.purge_expired(now)
                took = time.perf_counter() - started
                stop.set()
                during = [t for batch in await asyncio.gather(*producers) for t in batch]
    print(f"{args.expired} expired events; {args.producers} concurrent producers")
    print(f"without a purge:        {summary(baseline)}")
    print(f"while purging:          {summary(during)}")
    print(f"purge: {purged} events in {took:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
