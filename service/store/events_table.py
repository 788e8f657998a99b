"""The events table as each part of the DynamoDB adapter reaches it (`DynamoStore` makes one and
hands it to every part), and the two calls they share: a conditional update of one event, and a
strongly consistent batch read."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from service.store import items as codec
from service.store.base import StoreUnavailable
from service.store.dynamo_client import Item, Names, Op
from service.store.items import CLAIM_KEY, PK, SK, STATUS_KEY, TTL

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.literals import ReturnValueType

    from service.store.counters import Counters
    from service.store.shards import ShardPlan

DAY = 86_400_000
NAMES = Names({"#pk": PK, "#sk": SK, "#ck": CLAIM_KEY, "#sp": STATUS_KEY, "#ttl": TTL})
LIVE = "attribute_exists(#pk) AND #ex > :now"
BATCH_GET = 100


class Shards(Protocol):
    """The store's shard plan, as fresh as the caller needs it (`DynamoStore._shards`)."""

    async def __call__(self, *, creating: bool = False) -> ShardPlan: ...


class EventsTable:
    """What every part needs of the store: its client and counters (which `start()` makes, so
    they are looked up at each use), the table's name, the shard plan and the retention."""

    def __init__(
        self,
        name: str,
        *,
        client: Callable[[], DynamoDBClient],
        counters: Callable[[], Counters],
        shards: Shards,
        undelivered_ms: int,
        delivered_ms: int,
    ) -> None:
        self.name = name
        self.shards = shards
        self.undelivered_ms = undelivered_ms
        self.delivered_ms = delivered_ms
        self._client = client
        self._counters = counters

    @property
    def db(self) -> DynamoDBClient:
        return self._client()

    @property
    def counters(self) -> Counters:
        return self._counters()

    async def update(
        self,
        tenant: str,
        event_id: str,
        op: Op,
        values: Mapping[str, Mapping[str, Any]],
        returns: ReturnValueType,
        *,
        shard: int | None = None,
    ) -> tuple[bool, Item | None]:
        """One conditional update: (True, the item as `returns` asks) when it applied, else
        (False, the item its condition failed on, or None when there is none)."""
        if shard is None:
            shard = (await self.shards()).shard_of(tenant, event_id)
        try:
            response = await self.db.update_item(
                TableName=self.name,
                Key=codec.event_key(tenant, shard, event_id),
                UpdateExpression=op.update,
                ConditionExpression=op.condition,
                ExpressionAttributeNames=op.names,
                ExpressionAttributeValues=cast("Any", values),
                ReturnValues=returns,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.db.exceptions.ConditionalCheckFailedException as error:
            return False, cast("Item | None", error.response.get("Item"))
        return True, response.get("Attributes")

    async def batch_get(self, keys: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], Item]:
        """Items by (shard, sort key), strongly consistent, whatever DynamoDB left unprocessed
        read again."""
        found: dict[tuple[int, str], Item] = {}
        for start in range(0, len(keys), BATCH_GET):
            pending: list[Any] = list(keys[start : start + BATCH_GET])
            for attempt in range(5):
                if not pending:
                    break
                if attempt:
                    await asyncio.sleep(random.uniform(0, 0.025 * 2**attempt))
                response = await self.db.batch_get_item(
                    RequestItems={self.name: {"Keys": pending, "ConsistentRead": True}}
                )
                for item in response["Responses"].get(self.name, []):
                    found[(codec.shard_of_pk(item), item[SK]["S"])] = item
                unprocessed: Any = response.get("UnprocessedKeys", {})
                pending = unprocessed.get(self.name, {}).get("Keys", [])
            if pending:
                raise StoreUnavailable("DynamoDB left reads unprocessed")
        return found
