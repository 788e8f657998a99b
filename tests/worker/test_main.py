"""`worker.cli.main` in this process (subprocess runs are in test_cli.py; these count for
coverage): exit statuses and the one-line configuration error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.worker.conftest import WORKER_VARIABLES, LiveService
from worker import logs
from worker.cli import main


@pytest.fixture(autouse=True)
def worker_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in WORKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # main() configures the "worker" logger for a process; put it back for the other tests.
    saved = (logs.logger.handlers[:], logs.logger.level, logs.logger.propagate)
    yield
    logs.logger.handlers[:], logs.logger.level, logs.logger.propagate = saved


def test_main_drains_and_exits_0(
    live_service: LiveService, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, key = live_service.new_tenant("main")
    live_service.create_events(key, 3)
    monkeypatch.setenv("API_URL", live_service.url)
    monkeypatch.setenv("API_KEY", key)
    monkeypatch.setenv("TENANT_NAME", name)

    with pytest.raises(SystemExit) as exited:
        main(["--once", "--handler", "worker.handlers:noop", "--log-level", "warning"])

    assert exited.value.code == 0
    assert live_service.undelivered(key) == []
    assert logs.logger.level == logging.WARNING


def test_main_refuses_bad_configuration_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--once"])

    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("trigger-worker: error: no API key: set API_KEY")
