"""Misconfiguration as a new user meets it: one line on stderr that names the setting or path,
exit status 2 (1 for a store that failed), and nothing done on the way."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TRIGGER_API, Server, free_port

NO_AWS = {
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def trigger_api(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, without: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in without and k != "TRIGGER_DB"}
    return subprocess.run(
        [TRIGGER_API, *argv],
        env={**environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# serve binds its port first: port 0 takes any free one.
SERVE = ["serve", "--port", "0"]


@pytest.mark.parametrize("command", [["keys", "list"], SERVE])
def test_dynamodb_without_a_region_names_the_variable(tmp_path: Path, command: list[str]) -> None:
    result = trigger_api(
        *command,
        "--store",
        "dynamodb",
        cwd=tmp_path,
        env=NO_AWS,
        without=("AWS_DEFAULT_REGION", "AWS_REGION"),
    )

    assert result.returncode == 2
    assert "AWS_DEFAULT_REGION" in one_line(result)


@pytest.mark.parametrize("command", [["keys", "list"], ["tables", "create"], SERVE])
def test_dynamodb_without_credentials_names_the_variables(
    tmp_path: Path, command: list[str]
) -> None:
    result = trigger_api(
        *command,
        "--store",
        "dynamodb",
        cwd=tmp_path,
        env=NO_AWS,
        without=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"),
    )

    assert result.returncode == 2
    line = one_line(result)
    assert "AWS_ACCESS_KEY_ID" in line
    assert "AWS_SECRET_ACCESS_KEY" in line


@pytest.mark.parametrize("command", [["seed"], SERVE, ["keys", "list"]])
def test_a_sqlite_path_that_cannot_be_opened_is_named(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    for db in (tmp_path / "a-file" / "events.db", tmp_path):
        result = trigger_api(*command, "--db", str(db), cwd=tmp_path)

        assert result.returncode == 2
        line = one_line(result)
        assert str(db) in line
        assert "TRIGGER_DB" in line
        assert result.stdout == ""


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("x" * 4096)

    result = trigger_api("keys", "list", "--db", str(db), cwd=tmp_path)

    assert result.returncode == 2
    assert str(db) in one_line(result)


def test_a_mistyped_store_file_is_refused_not_created(tmp_path: Path) -> None:
    for command in (["keys", "list"], ["keys", "create", "--tenant", "acme"]):
        result = trigger_api(*command, "--db", "typo.db", cwd=tmp_path)

        assert result.returncode == 2
        assert "no SQLite store at typo.db" in one_line(result)
        assert not (tmp_path / "typo.db").exists()


async def test_missing_tables_point_at_tables_create(tmp_path: Path, moto_endpoint: str) -> None:
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "TRIGGER_EVENTS_TABLE": "Missing-Events",
        "TRIGGER_KEYS_TABLE": "Missing-Keys",
    }
    result = trigger_api("keys", "list", "--store", "dynamodb", cwd=tmp_path, env=env)

    assert result.returncode == 2
    line = one_line(result)
    assert "trigger-api tables create" in line
    assert "Missing-Keys" in line


def test_an_unreachable_endpoint_is_named(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {"AWS_ENDPOINT_URL_DYNAMODB": dead, "AWS_MAX_ATTEMPTS": "1"}

    result = trigger_api("keys", "list", "--store", "dynamodb", cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert f"DynamoDB at {dead} (AWS_ENDPOINT_URL_DYNAMODB) could not be reached" in one_line(
        result
    )


def test_serve_says_at_start_that_the_store_answered(tmp_path: Path) -> None:
    up = Server(tmp_path, "--db", str(tmp_path / "up.db"))
    assert up.stop() == 0

    log = up.stdout_path.with_suffix(".err").read_text()
    assert f"store: the SQLite file {tmp_path / 'up.db'} answered" in log


def test_a_port_in_use_stops_serve_before_it_seeds(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "never.db"

        result = trigger_api("serve", "--port", str(port), "--db", str(db), cwd=tmp_path)

    assert result.returncode == 2
    line = one_line(result)
    assert f"127.0.0.1:{port}" in line
    assert "TRIGGER_PORT" in line
    assert "API_KEY" not in result.stdout
    assert (
        not db.exists()
        or not sqlite3.connect(db)
        .execute("SELECT name FROM sqlite_master WHERE name = 'api_keys'")
        .fetchall()
    )


@pytest.mark.timeout(300)  # four cold starts of the CLI and a table waiter, on a busy machine
def test_the_readmes_dynamodb_local_section_works_without_aws_credentials(
    tmp_path: Path, moto_endpoint: str
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### DynamoDB Local or AWS") :]
    start = section.index("```sh\n") + 6
    block = section[start : section.index("\n```", start)]
    assert "uv run trigger-api serve" in block
    # serve runs until stopped: here, until it has said the store answered (or 120 s went by).
    serve = """trigger-api serve --port 0 > serve.log 2>&1 & pid=$!
for _ in $(seq 1200); do grep -q 'store: DynamoDB at .* answered' serve.log && break; sleep .1; done
kill $pid; wait $pid || true; cat serve.log"""
    script = block.replace("http://127.0.0.1:8001", moto_endpoint).replace(
        "uv run trigger-api serve", serve
    )
    aws = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")
    environ = {k: v for k, v in os.environ.items() if k not in (*aws, "AWS_EC2_METADATA_DISABLED")}
    environ |= {
        "AWS_CONFIG_FILE": NO_AWS["AWS_CONFIG_FILE"],
        "AWS_SHARED_CREDENTIALS_FILE": NO_AWS["AWS_SHARED_CREDENTIALS_FILE"],
        "PATH": f"{Path(TRIGGER_API).parent}{os.pathsep}{os.environ['PATH']}",
        "TRIGGER_EVENTS_TABLE": "Readme-Events",
        "TRIGGER_KEYS_TABLE": "Readme-Keys",
    }
    done = subprocess.run(
        ["bash", "-ec", 'uv() { shift; "$@"; }\n' + script],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "export ACME_API_KEY='tk_" in done.stdout
    assert "answered" in done.stdout


def test_a_store_file_of_another_version_is_named(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:
        old.execute("CREATE TABLE events (id TEXT)")
        old.execute("PRAGMA user_version = 1")

    result = trigger_api("keys", "list", "--db", str(db), cwd=tmp_path)

    assert result.returncode == 2
    line = one_line(result)
    assert str(db) in line
    assert "TRIGGER_DB" in line
