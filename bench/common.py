"""What the benchmark scripts share: a free loopback port, waiting for a server to answer, and
API keys made the way an operator makes them (`trigger-api keys create`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    """Return once `url` answers HTTP at all; exit the benchmark if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.05)


def create_key(tenant: str, *, db: Path | None = None, env: Mapping[str, str] = {}) -> str:
    """A new key for `tenant` in the store `db` (SQLite) or `env` (TRIGGER_* variables) names."""
    command = [str(BIN / "trigger-api"), "keys", "create", "--tenant", tenant]
    if db is not None:
        command += ["--db", str(db)]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
