"""Keys for a `trigger-api serve` running in another process, made the way an operator makes
them: `trigger-api keys create` on the same SQLite file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import TRIGGER_API


def create_key(db: Path, tenant: str) -> str:
    done = subprocess.run(
        [TRIGGER_API, "keys", "create", "--tenant", tenant, "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()
