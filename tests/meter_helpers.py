"""What the tests of the metered test server share: a client configured as the service's, tables
of a test's own, items of a known size, and the server's counts (`GET /_meter`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aioboto3
import httpx
from aiobotocore.config import AioConfig

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

Item = dict[str, Any]


@asynccontextmanager
async def dynamodb(endpoint: str, *, attempts: int = 1) -> AsyncIterator[DynamoDBClient]:
    """A client with the service's retry mode (standard) and `attempts` attempts per call, in
    all (as `AWS_MAX_ATTEMPTS` counts them; botocore's `max_attempts` would count retries): 1
    shows each throttle as the client's caller sees it when retries are spent."""
    config = AioConfig(retries={"mode": "standard", "total_max_attempts": attempts})
    session = aioboto3.Session()
    async with session.client("dynamodb", endpoint_url=endpoint, config=config) as client:
        yield client


def gsi(
    name: str,
    hash_key: str,
    range_key: str | None = None,
    *,
    projection: str = "KEYS_ONLY",
    included: tuple[str, ...] = (),
) -> dict[str, Any]:
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
    shape: dict[str, Any] = {"ProjectionType": projection}
    if included:
        shape["NonKeyAttributes"] = list(included)
    return {"IndexName": name, "KeySchema": keys, "Projection": shape}


async def new_table(db: DynamoDBClient, *indexes: dict[str, Any]) -> str:
    """An on-demand table of this test's own, keyed `pk`/`sk` (strings), with `indexes`."""
    name = f"meter-{uuid.uuid4().hex[:12]}"
    names = {"pk", "sk"} | {k["AttributeName"] for index in indexes for k in index["KeySchema"]}
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in names],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = list(indexes)
    await db.create_table(**request)
    return name


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item(pk: str, sk: str, size: int | None = None, **strings: str) -> Item:
    """An item of string attributes; with `size`, padded (attribute `p`) to exactly `size`
    bytes by DynamoDB's count (names plus UTF-8 values)."""
    attributes: Item = {**key(pk, sk), **{name: {"S": text} for name, text in strings.items()}}
    if size is not None:
        used = sum(len(name) + len(value["S"]) for name, value in attributes.items()) + len("p")
        assert size >= used
        attributes["p"] = {"S": "x" * (size - used)}
    return attributes


async def meter(endpoint: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{endpoint}/_meter")
    response.raise_for_status()
    report: dict[str, Any] = response.json()
    return report


async def usage(endpoint: str, table: str, index: str | None = None) -> dict[str, Any]:
    """The counts of one table, or of one of its indexes (empty when nothing was counted)."""
    counted: dict[str, Any] = (await meter(endpoint))["tables"].get(table, {})
    if index is not None:
        counted = counted.get("indexes", {}).get(index, {})
    return counted


class Spent:
    """Write units billed to a table (or one of its indexes) since the last call."""

    def __init__(self, endpoint: str, table: str, index: str | None = None) -> None:
        self._where = endpoint, table, index
        self._seen = 0

    async def __call__(self) -> int:
        total = int((await usage(*self._where)).get("wcu", 0))
        spent, self._seen = total - self._seen, total
        return spent
