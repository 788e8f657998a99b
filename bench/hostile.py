"""Hostile-client benchmark: what bad keys and slow clients cost a real `trigger-api serve`.

  1. memory: the server's RSS (VmRSS) before and after `--bad-keys` requests (3,000), each with
     a different made-up bearer token of `--key-bytes` (32 KB);
  2. descriptors: open `--slow` connections (300) that send half a request head and stall; count
     the server's open file descriptors at once and `--wait` seconds (45) later, and check that
     /health still answers meanwhile.

    uv run python bench/hostile.py [--bad-keys 3000] [--key-bytes 32768] [--slow 300] [--wait 45]

Run the same script with PYTHONPATH pointing at another checkout to measure that code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from common import BIN, free_port, wait_until_up


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def bad_keys(url: str, count: int, size: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    limit = asyncio.Semaphore(32)

    async def one(client: httpx.AsyncClient) -> None:
        token = "tk_" + secrets.token_urlsafe(size)[: size - 3]
        async with limit:
            try:
                response = await client.get(
                    "/v1/events", headers={"Authorization": f"Bearer {token}"}
                )
                outcomes[str(response.status_code)] += 1
            except httpx.TransportError:
                outcomes["connection closed"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(count)))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad-keys", type=int, default=3000)
    parser.add_argument("--key-bytes", type=int, default=32 * 1024)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--wait", type=float, default=45)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [str(BIN / "trigger-api"), "serve", "--port", str(port), "--db", f"{tmp}/h.db"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(f"{url}/health")
            time.sleep(1)
            before = rss_mb(server.pid)
            outcomes = asyncio.run(bad_keys(url, args.bad_keys, args.key_bytes))
            time.sleep(1)
            after = rss_mb(server.pid)
            print(f"{args.bad_keys} distinct {args.key_bytes}-byte bad keys: {dict(outcomes)}")
            print(f"  RSS before {before:.0f} MB, after {after:.0f} MB")

            idle = descriptors(server.pid)
            stalled = []
            for _ in range(args.slow):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: api\r\nContent-Ty")
                stalled.append(sock)
            time.sleep(0.5)
            held = descriptors(server.pid)
            health = httpx.get(f"{url}/health", timeout=5).status_code
            time.sleep(args.wait)
            later = descriptors(server.pid)
            for sock in stalled:
                sock.close()
            print(f"{args.slow} connections sending half a request head, then nothing:")
            print(
                f"  descriptors idle {idle}, with them open {held},"
                f" {args.wait:g} s later {later}; /health meanwhile: {health}"
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
