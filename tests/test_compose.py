"""docker-compose.yml and the Dockerfile, checked without a container engine: these catch
structural regressions where no image can be built or run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from service.cli import GRACEFUL_SHUTDOWN_SECONDS
from worker.config import Settings as WorkerSettings
from worker.tenant import WIND_DOWN_CAP

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "trigger-api:local"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def seconds(duration: str) -> float:
    """A compose duration such as `30s` or `1m30s`."""
    assert re.fullmatch(r"(\d+(ms|h|m|s))+", duration), duration
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", duration))


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_compose_runs_the_database_init_api_and_worker(services: dict[str, Any]) -> None:
    assert set(services) == {"dynamodb", "init", "api", "worker"}
    assert services["dynamodb"]["image"].startswith("amazon/dynamodb-local:")
    assert "build" in services["api"]
    # One image for the API, the worker and the init job.
    assert {services[name]["image"] for name in ("api", "init", "worker")} == {IMAGE}


def test_dynamodb_keeps_its_data_on_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    dynamodb = services["dynamodb"]
    assert "-inMemory" not in dynamodb["command"]
    data_path = dynamodb["command"][dynamodb["command"].index("-dbPath") + 1]
    assert f"dynamodb-data:{data_path}" in dynamodb["volumes"]
    assert set(compose["volumes"]) == {"dynamodb-data", "worker-env"}


def test_init_creates_tables_then_seeds_and_hands_the_keys_to_the_worker(
    services: dict[str, Any],
) -> None:
    init = services["init"]
    script = init["command"][-1]
    assert script.index("trigger-api tables create") < script.index("trigger-api seed")
    assert "/run/trigger/worker.env" in script
    assert init["restart"] == "no"
    assert "worker-env:/run/trigger" in init["volumes"]
    assert init["depends_on"] == {"dynamodb": {"condition": "service_started"}}
    worker = services["worker"]
    assert "worker-env:/run/trigger:ro" in worker["volumes"]
    assert ". /run/trigger/worker.env && exec trigger-worker" in worker["command"][-1]


def test_api_is_published_on_loopback_only_with_a_healthcheck(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["ports"][0] == "127.0.0.1:8000:8000"
    assert api["command"][:2] == ["trigger-api", "serve"]
    assert "dynamodb" in api["command"]
    test = api["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "/health" in " ".join(test)
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_metrics_are_published_on_loopback_on_ports_of_their_own(
    services: dict[str, Any],
) -> None:
    api, worker = services["api"], services["worker"]
    api_port = int(api["environment"]["TRIGGER_METRICS_PORT"])
    worker_port = int(worker["environment"]["WORKER_METRICS_PORT"])
    assert len({8000, api_port, worker_port}) == 3
    assert f"127.0.0.1:{api_port}:{api_port}" in api["ports"]
    # The container's own address, so that the published port reaches it.
    assert "--host" in api["command"]
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert worker["environment"]["WORKER_METRICS_HOST"] == "0.0.0.0"
    assert worker["ports"] == [f"127.0.0.1:{worker_port}:{worker_port}"]


def test_worker_is_healthy_while_its_heartbeat_is_fresh(services: dict[str, Any]) -> None:
    worker = services["worker"]
    beat = worker["environment"]["WORKER_HEARTBEAT_FILE"]
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert f"getmtime('{beat}')" in test[-1]


def test_services_start_in_order(services: dict[str, Any]) -> None:
    assert services["api"]["depends_on"] == {
        "init": {"condition": "service_completed_successfully"}
    }
    assert services["worker"]["depends_on"] == {
        "init": {"condition": "service_completed_successfully"},
        "api": {"condition": "service_healthy"},
    }


def test_services_that_need_dynamodb_point_at_the_local_one(services: dict[str, Any]) -> None:
    for name in ("init", "api"):
        environment = services[name]["environment"]
        assert environment["TRIGGER_STORE"] == "dynamodb"
        assert environment["AWS_ENDPOINT_URL_DYNAMODB"] == "http://dynamodb:8000"
        assert environment["AWS_DEFAULT_REGION"]
    assert services["worker"]["environment"]["API_URL"] == "http://api:8000"


def test_long_running_services_restart(services: dict[str, Any]) -> None:
    for name in ("dynamodb", "api", "worker"):
        assert services[name]["restart"] == "unless-stopped"


def test_api_and_worker_stop_cleanly_before_compose_kills_them(services: dict[str, Any]) -> None:
    assert seconds(services["api"]["stop_grace_period"]) > GRACEFUL_SHUTDOWN_SECONDS
    worker = services["worker"]
    grace = float(
        worker["environment"].get("WORKER_GRACE_SECONDS", WorkerSettings(tenants=()).grace_seconds)
    )
    assert seconds(worker["stop_grace_period"]) >= grace + WIND_DOWN_CAP


def test_dockerfile_is_multi_stage_on_a_slim_python_chosen_by_arg(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    assert ("ARG", "PYTHON_VERSION=3.11") in steps
    bases = [rest for kind, rest in steps if kind == "FROM"]
    assert sum(base.startswith("python:${PYTHON_VERSION}-slim") for base in bases) == 2
    assert "uv sync --frozen --no-dev --no-editable" in dockerfile


def test_dockerfile_runs_as_a_non_root_user(dockerfile: str) -> None:
    users = [rest for kind, rest in instructions(dockerfile) if kind == "USER"]
    assert users
    assert users[-1] not in ("root", "0")


def test_dockerfile_has_a_healthcheck_and_an_exec_form_command(dockerfile: str) -> None:
    steps = dict(instructions(dockerfile))
    assert "/health" in steps["HEALTHCHECK"]
    assert "curl" not in steps["HEALTHCHECK"]  # slim images have none
    assert steps["CMD"].startswith('["trigger-api", "serve"')


def test_dockerignore_keeps_tests_caches_and_local_data_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :].count("*") == 1  # allow-list: everything else stays out
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "service", "worker"}
    assert "**/__pycache__" in lines
