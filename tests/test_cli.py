"""`trigger-api` as an operator uses it: output that scripts can read, errors on one line."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from service.cli import main
from service.store.sqlite import SqliteStore
from tests.conftest import TRIGGER_API

KEY = re.compile(r"tk_[A-Za-z0-9_-]{43}")


@pytest.fixture
def db(tmp_path: Path) -> str:
    """An empty embedded store: commands other than serve and seed need one to exist."""

    async def create() -> None:
        async with SqliteStore(str(tmp_path / "cli.db")):
            pass

    asyncio.run(create())
    return str(tmp_path / "cli.db")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    main(list(argv))
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_keys_create_prints_only_the_key(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, "keys", "create", "--tenant", "acme", "--db", db)

    assert KEY.fullmatch(out.strip())
    assert out.count("\n") == 1


def test_keys_list_never_shows_a_whole_key(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    key, _ = run(capsys, "keys", "create", "--tenant", "acme", "--db", db)
    run(capsys, "keys", "create", "--tenant", "globex", "--db", db)

    out, _ = run(capsys, "keys", "list", "--db", db)

    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert key.strip() not in out
    assert re.match(r"[0-9a-f]{12}  acme\s+active\s+\d{4}-\d\d-\d\dT", lines[0])
    assert "globex" in lines[1]


def test_revoke_takes_effect_by_key_or_by_listed_id(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = run(capsys, "keys", "create", "--tenant", "acme", "--db", db)
    run(capsys, "keys", "create", "--tenant", "acme", "--db", db)
    listed, _ = run(capsys, "keys", "list", "--db", db)
    second_id = listed.splitlines()[1].split()[0]

    _, err_by_key = run(capsys, "keys", "revoke", first.strip(), "--db", db)
    _, err_by_id = run(capsys, "keys", "revoke", second_id, "--db", db)

    assert "revoked" in err_by_key
    assert second_id in err_by_id
    after, _ = run(capsys, "keys", "list", "--db", db)
    assert [line.split()[2] for line in after.splitlines()] == ["revoked", "revoked"]


def test_revoking_an_unknown_key_fails(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "revoke", "tk_nope", "--db", db])

    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == "trigger-api: no such key"


def test_seed_prints_sourceable_lines_for_the_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = run(capsys, "seed", "--db", str(tmp_path / "cli.db"))

    lines = out.strip().splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "export ACME_API_KEY",
        "export GLOBEX_API_KEY",
        "export INITECH_API_KEY",
        "export API_KEYS",
        "export TENANT_NAMES",
    ]
    keys = [KEY.search(line) for line in lines[:3]]
    assert all(keys)
    assert lines[3] == "export API_KEYS='" + ",".join(k.group() for k in keys if k) + "'"
    assert lines[4] == "export TENANT_NAMES='acme,globex,initech'"


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            ["keys", "list", "--store", "postgres"],
            {},
            "--store must be 'sqlite' or 'dynamodb', not 'postgres'",
        ),
        (
            ["keys", "list"],
            {"TRIGGER_STORE": "mysql"},
            "TRIGGER_STORE must be 'sqlite' or 'dynamodb', not 'mysql'",
        ),
        (["keys", "list", "--db", ""], {}, "--db must be non-empty text, not ''"),
        (
            ["serve", "--port", "http"],
            {},
            "--port must be an integer between 0 and 65535, not 'http'",
        ),
        (
            ["serve"],
            {"TRIGGER_PORT": "70000"},
            "TRIGGER_PORT must be an integer between 0 and 65535, not '70000'",
        ),
        (
            ["keys", "list"],
            {"TRIGGER_DELIVERED_RETENTION_DAYS": "-1"},
            "TRIGGER_DELIVERED_RETENTION_DAYS must be a positive number of days, not '-1'",
        ),
        (
            ["keys", "list"],
            {"TRIGGER_UNDELIVERED_RETENTION_DAYS": "soon"},
            "TRIGGER_UNDELIVERED_RETENTION_DAYS must be a positive number of days, not 'soon'",
        ),
        (
            ["keys", "list"],
            {"AWS_ENDPOINT_URL_DYNAMODB": "localhost:8001"},
            "AWS_ENDPOINT_URL_DYNAMODB must be an http(s) URL, not 'localhost:8001'",
        ),
    ],
)
def test_an_invalid_setting_stops_at_once_with_one_line_naming_its_source(
    argv: list[str],
    environ: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"trigger-api: invalid setting: {message}"]


def test_a_flag_overrides_a_bad_environment_variable(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRIGGER_STORE", "mysql")

    out, err = run(
        capsys,
        "keys",
        "create",
        "--tenant",
        "acme",
        "--store",
        "sqlite",
        "--db",
        db,
    )

    assert KEY.fullmatch(out.strip())
    assert err == ""


def test_help_names_each_flags_variable_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])

    help_text = " ".join(capsys.readouterr().out.split())
    assert "--port PORT port (TRIGGER_PORT, default 8000)" in help_text
    assert "--store STORE sqlite or dynamodb (TRIGGER_STORE, default sqlite)" in help_text


def test_serve_with_an_invalid_setting_exits_before_serving(tmp_path: Path) -> None:
    result = subprocess.run(
        [TRIGGER_API, "serve", "--store", "oracle"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "trigger-api: invalid setting: --store must be 'sqlite' or 'dynamodb', not 'oracle'"
    ]


def test_bad_tenant_names_are_refused(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "create", "--tenant", "Acme Corp", "--db", db])

    assert exit_info.value.code == 1
    assert "invalid tenant name" in capsys.readouterr().err


async def test_tables_create_is_idempotent_and_keys_work_on_dynamodb(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    events_table, keys_table = "Cli-Events", "Cli-Keys"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    monkeypatch.setenv("TRIGGER_STORE", "dynamodb")
    monkeypatch.setenv("TRIGGER_EVENTS_TABLE", events_table)
    monkeypatch.setenv("TRIGGER_KEYS_TABLE", keys_table)
    argv = ["tables", "create"]

    # asyncio.run needs a thread without a running loop.
    import asyncio

    await asyncio.to_thread(main, argv)
    await asyncio.to_thread(main, argv)
    await asyncio.to_thread(main, ["keys", "create", "--tenant", "acme"])
    await asyncio.to_thread(main, ["keys", "list"])

    out, err = capsys.readouterr()
    assert err.count("tables ready: Cli-Events, Cli-Keys") == 2
    key, listing = out.splitlines()
    assert KEY.fullmatch(key)
    assert "acme" in listing


def test_tables_create_needs_the_dynamodb_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["tables", "create", "--db", str(tmp_path / "x.db")])

    assert "needs the DynamoDB store" in capsys.readouterr().err


async def test_unreachable_dynamodb_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SystemExit) as exit_info:
        await asyncio.to_thread(main, ["keys", "list", "--store", "dynamodb"])

    assert exit_info.value.code == 1
    assert capsys.readouterr().err.count("\n") == 1
