"""Property-based fuzzing of the live service from its own OpenAPI document (schemathesis):
whatever a client sends, the answer is never a 5xx, and every answer matches the document —
its status codes, content types, headers and schemas."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Server

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


# Most of a run is claims long-polling (up to 20 s each), and it takes longer on a busy machine.
@pytest.mark.timeout(300)
def test_no_request_gets_a_server_error_or_an_undocumented_answer(tmp_path: Path) -> None:
    server = Server(tmp_path, "--db", str(tmp_path / "fuzz.db"))
    try:
        result = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {server.keys()['acme']}",
                "--checks",
                CHECKS,
                "--max-examples",
                "30",
                "--seed",
                "1",
                "--request-timeout",
                "25",  # claims may long-poll for up to 20 s
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,  # its caches (.schemathesis/, .hypothesis/) stay out of the checkout
        )
    finally:
        server.stop()

    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    # Every generated case passed every check. (Its warnings, e.g. that an operation mostly
    # answered 404 to the ids it made up, are advice about the fuzzing, not failures.)
    [cases] = re.findall(r"Test cases:\s*\n\s*(.*)", result.stdout)
    generated, passed = re.fullmatch(r"(\d+) generated, (\d+) passed", cases.strip()).groups()  # type: ignore[union-attr]
    assert int(generated) == int(passed) > 500, report
