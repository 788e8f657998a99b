"""The OpenAPI document describes every route the app serves, with schemas that resolve."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from service.routes import ROUTES
from tests.conftest import Api


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


async def test_openapi_covers_every_route_and_every_ref_resolves(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    document = response.json()

    assert response.status_code == 200
    assert document["openapi"] == "3.1.0"
    served = {
        (route.path, method.lower())
        for route in ROUTES
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == described
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert re.fullmatch(r"#/components/schemas/\w+", ref)
        assert ref.rsplit("/", 1)[1] in schemas
    event = schemas["Event"]
    assert event["properties"]["payload"]["type"] == "object"
    assert set(event["required"]) == {
        "id",
        "created_at",
        "status",
        "payload",
        "delivered_at",
        "attempts",
        "lease_expires_at",
        "available_at",
        "last_error",
    }
    assert set(schemas["ClaimedEvent"]["required"]) == set(event["required"]) | {"lease_token"}
    assert sorted(event["properties"]["status"]["enum"]) == ["dead", "delivered", "undelivered"]
    claim = schemas["ClaimRequest"]["properties"]
    assert (claim["limit"]["minimum"], claim["limit"]["maximum"]) == (1, 100)
    assert claim["wait_seconds"]["maximum"] == 20
    assert (
        claim["max_attempts"]["anyOf"][0]["minimum"],
        claim["max_attempts"]["anyOf"][0]["maximum"],
    ) == (1, 1000)
    release = document["paths"]["/v1/events/{event_id}/release"]["post"]
    assert set(schemas["ReleaseRequest"]["required"]) == {"lease_token"}
    assert {"200", "404", "409", "422"} <= set(release["responses"])
    assert "lease_lost" in release["responses"]["409"]["description"]
    create = document["paths"]["/v1/events"]["post"]
    assert {"201", "401", "413", "422", "503"} <= set(create["responses"])
