"""Benchmark: how fast `trigger-worker --once` drains the embedded store.

Starts `trigger-api serve` on a fresh SQLite file in a temporary directory, mints a key per
tenant, loads the events (batches of 50, or single POSTs if the batch route is missing), then
times one `trigger-worker --once` run with the no-op handler and prints events/s drained.

    uv run python bench/worker_drain.py [--events 10000] [--tenants 3] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from common import BIN, create_key, free_port, wait_until_up

TARGET = 2_000  # events/s a `--once` run should drain (README, "Benchmarks")


async def load(url: str, keys: list[str], total: int, parallel: int = 16) -> str:
    """Store `total` events spread evenly over `keys`; return how they were sent."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        probe = await http.post(
            "/v1/events/batch",
            json={"events": [{"n": 0}]},
            headers={"Authorization": f"Bearer {keys[0]}"},
        )
        batched = probe.status_code == 201
        size = 50 if batched else 1
        jobs: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        first = 1 if batched else 0  # the probe stored one event when it was accepted
        for n in range(first, total, size):
            jobs.put_nowait((keys[(n // size) % len(keys)], min(size, total - n)))

        async def sender() -> None:
            while not jobs.empty():
                key, count = jobs.get_nowait()
                events = [{"event_type": "bench.tick", "n": i} for i in range(count)]
                auth = {"Authorization": f"Bearer {key}"}
                if batched:
                    response = await http.post(
                        "/v1/events/batch", json={"events": events}, headers=auth
                    )
                else:
                    response = await http.post("/v1/events", json=events[0], headers=auth)
                if response.status_code != 201:
                    raise SystemExit(f"loading failed: {response.status_code} {response.text}")

        await asyncio.gather(*(sender() for _ in range(parallel)))
    return "POST /v1/events/batch (50 per request)" if batched else "POST /v1/events"


def undelivered_left(url: str, keys: list[str]) -> int:
    left = 0
    for key in keys:
        page = httpx.get(
            f"{url}/v1/events",
            params={"status": "undelivered", "limit": "100"},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        left += len(page["events"])
    return left


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=100, help="worker --concurrency")
    parser.add_argument("--log-level", default="info", help="worker WORKER_LOG_LEVEL")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="worker-drain-") as home:
        db = Path(home) / "bench.db"
        url = f"http://127.0.0.1:{free_port()}"
        port = url.rsplit(":", 1)[1]
        with (Path(home) / "serve.log").open("wb") as log:
            service = subprocess.Popen(
                [BIN / "trigger-api", "serve", "--port", port, "--db", db],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            wait_until_up(f"{url}/health")
            keys = [create_key(f"bench-{n}", db=db) for n in range(args.tenants)]
            started = time.perf_counter()
            how = asyncio.run(load(url, keys, args.events))
            loaded = time.perf_counter() - started
            print(f"loaded {args.events} events, {args.tenants} tenants, in {loaded:.2f}s ({how})")

            env = {
                **os.environ,
                "API_URL": url,
                "API_KEYS": ",".join(keys),
                "TENANT_NAMES": ",".join(f"bench-{n}" for n in range(args.tenants)),
                "WORKER_LOG_LEVEL": args.log_level,
            }
            command = [
                str(BIN / "trigger-worker"),
                "--once",
                "--handler",
                "worker.handlers:noop",
                "--concurrency",
                str(args.concurrency),
            ]
            cpu_before = _children_cpu()
            started = time.perf_counter()
            # Its log (one line per event) goes to a file, as it would in production.
            with (Path(home) / "worker.log").open("wb") as worker_log:
                status = subprocess.run(command, env=env, stderr=worker_log).returncode
            elapsed = time.perf_counter() - started
            worker_cpu = _children_cpu() - cpu_before
            left = undelivered_left(url, keys)
        finally:
            service.terminate()
            service.wait(timeout=10)

    rate = args.events / elapsed
    verdict = "meets" if rate >= TARGET and status == 0 and left == 0 else "MISSES"
    print(
        f"trigger-worker --once drained {args.events} events in {elapsed:.2f}s "
        f"(process start included): {rate:,.0f} events/s — {verdict} the {TARGET:,}/s target "
        f"(exit status {status}, {left} left undelivered; worker CPU {worker_cpu:.2f}s)"
    )
    if status != 0 or left:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
