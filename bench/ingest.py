"""Ingest benchmark: prints events/s stored, p50/p99 latency and ours/bare ratios.

In one run on one machine it drives, with the same load (wrk, 64 connections, ~300-byte
authenticated events):
  1. a bare Starlette endpoint that only parses the JSON body (bench/bare_app.py);
  2. `trigger-api serve` on the embedded store (durable 201s: WAL, synchronous=FULL);
  3. the batch route on the embedded store, 50 events per request;
  3b. single events again with `--no-access-log`, to show what the access log costs;
  4. `trigger-api serve` on DynamoDB (tests/moto_server.py, moto with keep-alive and one lock),
     POST /v1/events; concurrent creates are coalesced into batch writes there;
and compares the CPU time each server process spends per successful request: the service on
DynamoDB against the bare endpoint.

Only successful answers count towards events/s. When more than a handful of requests fail
(`allowed_failures`), the run prints its figures and then exits with status 1.

    uv run python bench/ingest.py [--duration 6] [--connections 64] [--rounds 3]

The machine's speed moves between phases, so every ratio is taken within one round (all targets
run back to back) and printed as the median and range over the rounds.

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from common import BIN, create_key, free_port, wait_until_up

HERE = Path(__file__).resolve().parent
EVENT = {
    "event_type": "customer.created",
    "customer": {"id": "cus_8f3a9c2e", "email": "alice@acme.example", "name": "Alice Example"},
    "plan": "pro",
    "amount": 4900,
    "currency": "usd",
    "metadata": {"source": "signup-form", "campaign": "winter-2026", "ref": "a1b2c3d4e5f6"},
    "occurred_at": "2026-11-25T12:00:00Z",
}


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, stdout: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        args, stdout=out, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if stdout:
            out.close()  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The process's CPU time so far: (user, system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


# wrk's summary: requests answered, and how many of them (or their sockets) failed.
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT requests=%d failed=%d seconds=%.6f\\n",
    summary.requests, failed, summary.duration / 1e6))
end
"""


def allowed_failures(requests: int) -> int:
    """A handful: 10, or 0.1% of a long run. More means the figure measures errors."""
    return max(10, requests // 1000)


def wrk(
    url: str, body: bytes, key: str | None, duration: int, connections: int, workdir: Path
) -> dict[str, float]:
    """One wrk run: successful requests per second (wrk's Requests/sec counts failures too),
    latency percentiles, and how many requests failed."""
    script = workdir / "post.lua"
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        + DONE
    )
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency"]
    result = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    )
    text = result.stdout

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        assert match, text
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    summary = re.search(r"RESULT requests=(\d+) failed=(\d+) seconds=([\d.]+)", text)
    assert summary, text
    requests, failed, seconds = int(summary[1]), int(summary[2]), float(summary[3])
    succeeded = max(requests - failed, 0)
    if failed:
        print(f"  warning: {failed} of {requests} requests failed ({url})")
    return {
        "rps": succeeded / seconds,
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": requests,
        "failed": failed,
    }


@contextmanager
def serve_bare(delay_ms: float = 0) -> Iterator[tuple[str, int]]:
    """The bare endpoint (bench/bare_app.py), answering `delay_ms` after each body arrived:
    (its POST url, its pid)."""
    port = free_port()
    command = [sys.executable, str(HERE / "bare_app.py"), str(port), str(delay_ms)]
    with process(command) as bare_app:
        url = f"http://127.0.0.1:{port}/v1/events"
        wait_until_up(url)
        yield url, bare_app.pid


@contextmanager
def serve_sqlite(workdir: Path, name: str, *flags: str) -> Iterator[tuple[str, str]]:
    """`trigger-api serve` on a new embedded store: (base url, a demo tenant's key)."""
    stdout, port = workdir / f"{name}.out", free_port()
    db = str(workdir / f"{name}.db")
    command = [str(BIN / "trigger-api"), "serve", "--db", db, "--port", str(port), *flags]
    with process(command, stdout=stdout):
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/health")
        yield base, demo_key(stdout)


def demo_key(stdout: Path) -> str:
    for line in stdout.read_text().splitlines():
        if line.startswith("export ACME_API_KEY="):
            return line.split("'")[1]
    raise SystemExit("serve printed no demo key")


@contextmanager
def serve_dynamodb(workdir: Path) -> Iterator[tuple[str, str, int]]:
    """`trigger-api serve --store dynamodb` against moto's server: (base url, key, pid)."""
    moto_port, api_port = free_port(), free_port()
    env = {
        "TRIGGER_STORE": "dynamodb",
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{moto_port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    moto = HERE.parent / "tests" / "moto_server.py"
    with process([sys.executable, str(moto), str(moto_port)]):
        wait_until_up(f"http://127.0.0.1:{moto_port}")
        subprocess.run(
            [str(BIN / "trigger-api"), "tables", "create"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        key = create_key("acme", env=env)
        with process([str(BIN / "trigger-api"), "serve", "--port", str(api_port)], env=env) as api:
            url = f"http://127.0.0.1:{api_port}"
            wait_until_up(f"{url}/health")
            yield url, key, api.pid


def with_cpu(pid: int, run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """`run`'s figures plus the CPU milliseconds process `pid` spent per successful request."""
    user, system = cpu_seconds(pid)
    result = run()
    user_after, system_after = cpu_seconds(pid)
    per_request = 1000 / max(result["requests"] - result["failed"], 1)
    return {
        **result,
        "cpu_ms": (user_after - user + system_after - system) * per_request,
        "user_ms": (user_after - user) * per_request,
    }


BARE = "bare starlette (parse only)"
SINGLE = "trigger-api, sqlite, POST /v1/events"
BATCH = "trigger-api, sqlite, POST /v1/events/batch (x50)"
UNLOGGED = "trigger-api, sqlite, POST /v1/events, no access log"
DYNAMO = "trigger-api, dynamodb (moto), POST /v1/events"


def one_round(
    body: bytes, batch: bytes, duration: int, connections: int, workdir: Path
) -> dict[str, dict[str, float]]:
    """Every target once, one after the other: the figures of one phase of the machine."""
    results: dict[str, dict[str, float]] = {}

    def run(url: str, payload: bytes, key: str | None) -> dict[str, float]:
        wrk(url, payload, key, 2, connections, workdir)  # warm-up
        return wrk(url, payload, key, duration, connections, workdir)

    with serve_bare() as (url, pid):
        results[BARE] = with_cpu(pid, lambda: run(url, body, None))
    with serve_sqlite(workdir, "ours") as (base, key):
        results[SINGLE] = run(f"{base}/v1/events", body, key)
        batch_result = run(f"{base}/v1/events/batch", batch, key)
        # Each successful request stored 50 events; a failed one stored none.
        results[BATCH] = {**batch_result, "rps": batch_result["rps"] * 50}
    with serve_sqlite(workdir, "quiet", "--no-access-log") as (base, key):
        results[UNLOGGED] = run(f"{base}/v1/events", body, key)
    with serve_dynamodb(workdir) as (base, key, pid):
        results[DYNAMO] = with_cpu(pid, lambda: run(f"{base}/v1/events", body, key))
    return results


def print_round(number: int, results: dict[str, dict[str, float]]) -> None:
    print(
        f"\nround {number}: {'target':<50} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'failed':>8} {'CPU ms':>7} {'user ms':>7}"
    )
    for name, r in results.items():
        cpu = f"{r['cpu_ms']:>7.3f} {r['user_ms']:>7.3f}" if "cpu_ms" in r else ""
        print(
            f"{'':9}{name:<50} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}"
            f" {r['failed']:>8.0f} {cpu}"
        )


def ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    bare = results[BARE]
    return {
        "ours/bare (single events)": results[SINGLE]["rps"] / bare["rps"],
        "the same without the access log": results[UNLOGGED]["rps"] / bare["rps"],
        "batch/single (events/s)": results[BATCH]["rps"] / results[SINGLE]["rps"],
        "CPU per ingest, DynamoDB path / bare": results[DYNAMO]["cpu_ms"] / bare["cpu_ms"],
        "  user time alone": results[DYNAMO]["user_ms"] / bare["user_ms"],
    }


TARGETS = {
    "ours/bare (single events)": "(target >= 0.5)",
    "batch/single (events/s)": "(target >= 3)",
    "CPU per ingest, DynamoDB path / bare": "(target <= 3)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    body = json.dumps(EVENT).encode()
    batch = json.dumps({"events": [EVENT] * 50}).encode()
    print(
        f"event size {len(body)} bytes; {args.connections} connections;"
        f" {args.duration} s per run; {args.rounds} rounds; {os.cpu_count()} cores"
    )
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(1, args.rounds + 1):
            workdir = Path(tmp) / f"round-{number}"  # new stores each round
            workdir.mkdir()
            rounds.append(one_round(body, batch, args.duration, args.connections, workdir))
            print_round(number, rounds[-1])
    # Each ratio is taken within one round (one phase of the machine), then summarised.
    per_round = [ratios(results) for results in rounds]
    print(f"\n{'ratio, per round':<40} {'median':>7}  {'min-max':<11}")
    for name in per_round[0]:
        values = sorted(r[name] for r in per_round)
        spread = f"{values[0]:.2f}-{values[-1]:.2f}"
        print(f"{name:<40} {statistics.median(values):>7.2f}  {spread:<11} {TARGETS.get(name, '')}")
    failures = [
        f"round {number}, {name}: {r['failed']:.0f} of {r['requests']:.0f} requests failed"
        for number, results in enumerate(rounds, 1)
        for name, r in results.items()
        if r["failed"] > allowed_failures(int(r["requests"]))
    ]
    if failures:
        raise SystemExit(
            "too many failed requests; the figures above do not hold:\n  " + "\n  ".join(failures)
        )


if __name__ == "__main__":
    main()
