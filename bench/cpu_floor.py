"""Where the DynamoDB path's CPU per ingest goes: the same service, with its store's create
replaced, at the throughput the test server allows.

bench/ingest.py compares the service's CPU per single-event create on DynamoDB (moto's server)
with a bare endpoint's. The test server answers a batch write in tens of milliseconds, which
holds 64 connections to a fraction of the bare endpoint's rate, and a server that answers fewer
requests per turn of its event loop spends more CPU on each (its own polling, reads and writes,
no longer shared). This script separates the two in one run:

  1. the bare endpoint (bench/bare_app.py);
  2. `trigger-api` whose create stores nothing and answers at once: the route's own cost;
  3. `trigger-api serve` on DynamoDB (tests/moto_server.py), as bench/ingest.py runs it;
  4. (2) answering after (3)'s median latency (or `--wait-ms`): the route's cost at about the
     rate the test server allows, with no store work;
  5. (1) answering after the same latency: the bare endpoint at that rate.

(3) / (4) is what the DynamoDB path itself costs over the route at that rate, and (3) / (5) the
DynamoDB path against the bare endpoint at the same rate.

    uv run python bench/cpu_floor.py [--duration 8] [--wait-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BIN, create_key, free_port, wait_until_up
from ingest import EVENT, process, serve_bare, serve_dynamodb, with_cpu, wrk


def stand_in(mode: str, db: str, port: int) -> None:
    """Serve the app on SQLite with `insert_events` replaced (run in a child process)."""
    import uvicorn

    from service.app import create_app
    from service.cli import collect_less
    from service.protocol import Limits, limited_protocol
    from service.settings import Settings
    from service.store.sqlite import SqliteStore

    wait = float(mode) / 1000

    async def insert_events(*args: object, **kwargs: object) -> None:
        if wait:
            await asyncio.sleep(wait)

    SqliteStore.insert_events = insert_events  # type: ignore[method-assign]
    settings = Settings(store="sqlite", db=db)
    app = create_app(settings)
    limits = Limits(settings.header_timeout, settings.body_timeout, settings.max_header_bytes)
    collect_less()  # as `trigger-api serve` does, with its protocol
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=limited_protocol(limits),
        access_log=False,
        proxy_headers=True,
        log_level="warning",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wait-ms", type=float, help="default: from the DynamoDB run")
    parser.add_argument("--stand-in", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stand_in:
        mode, db, port = args.stand_in
        stand_in(mode, db, int(port))
        return
    body = json.dumps(EVENT).encode()
    rows: list[tuple[str, dict[str, float]]] = []

    def measure(name: str, pid: int, url: str, key: str | None, workdir: Path) -> None:
        wrk(url, body, key, 2, args.connections, workdir)  # warm-up
        run = with_cpu(pid, lambda: wrk(url, body, key, args.duration, args.connections, workdir))
        rows.append((name, run))

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with serve_bare() as (url, pid):
            measure("bare starlette (parse only)", pid, url, None, workdir)

        def route(wait_ms: float, name: str) -> None:
            db = workdir / f"stand-in-{wait_ms:g}.db"
            subprocess.run(
                [str(BIN / "trigger-api"), "seed", "--db", str(db)], check=True, capture_output=True
            )  # makes the file; keys create needs one
            key = create_key("acme", db=db)
            port = free_port()
            command = [sys.executable, __file__, "--stand-in", str(wait_ms), str(db), str(port)]
            with process(command) as server:
                wait_until_up(f"http://127.0.0.1:{port}/health")
                measure(name, server.pid, f"http://127.0.0.1:{port}/v1/events", key, workdir)

        route(0, "route, create answers at once")
        with serve_dynamodb(workdir) as (base, key, pid):
            measure("trigger-api, dynamodb (moto)", pid, f"{base}/v1/events", key, workdir)
        # The DynamoDB run's median: its rate, give or take, with no store work.
        wait_ms = args.wait_ms or rows[2][1]["p50"]
        route(wait_ms, f"route, create answers after {wait_ms:.0f} ms")
        with serve_bare(wait_ms) as (url, pid):
            measure(f"bare, answers after {wait_ms:.0f} ms", pid, url, None, workdir)

    print(f"\n{'target':<45} {'events/s':>9} {'p50 ms':>7} {'CPU µs/request':>15}")
    for name, run in rows:
        print(f"{name:<45} {run['rps']:>9.0f} {run['p50']:>7.1f} {run['cpu_ms'] * 1000:>15.0f}")
    cpu = {name: run["cpu_ms"] for name, run in rows}
    bare, at_once, dynamo, waiting, bare_waiting = (cpu[name] for name, _ in rows)
    print(f"\nroute at full rate / bare:           {at_once / bare:.2f}")
    print(f"route at the test server's rate / bare: {waiting / bare:.2f}")
    print(f"DynamoDB path / bare:                 {dynamo / bare:.2f}   (issue 11's figure)")
    print(f"DynamoDB path / route at its rate:    {dynamo / waiting:.2f}   (the store's own share)")
    print(f"bare at the test server's rate / bare:  {bare_waiting / bare:.2f}")
    print(f"DynamoDB path / bare at the same rate: {dynamo / bare_waiting:.2f}")


if __name__ == "__main__":
    main()
