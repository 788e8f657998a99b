"""The DynamoDB keys table: API keys, and the few items every task shares (the cursor secret,
the shard plan, leases that one task at a time holds)."""

from __future__ import annotations

import secrets
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from service.store import schema
from service.store.base import ApiKey
from service.store.dynamo_client import Item, Names, Op, query_all
from service.store.shards import ShardPlan

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import QueryInputTypeDef, TransactWriteItemTypeDef

PK = schema.API_KEYS.partition_key
SK = schema.API_KEYS.sort_key
_NAMES = Names({"#kpk": PK})
_CREATE = Op(_NAMES, condition="attribute_not_exists(#kpk)")
_REVOKE = Op(_NAMES, condition="attribute_exists(#kpk)", update="SET #active = :false")
_REPLACE_PLAN = Op(
    _NAMES, condition="#version = :version", update="SET #plan = :plan, #version = :next"
)
_TAKE_LEASE = Op(
    _NAMES,
    condition="attribute_not_exists(#kpk) OR #until <= :now OR #holder = :holder",
    update="SET #holder = :holder, #until = :until",
)
SECRET_KEY = {PK: {"S": "SECRET#cursor"}, SK: {"S": "S"}}
PING_KEY = {PK: {"S": "PING#never-written"}, SK: {"S": "P"}}
PLAN_KEY = {PK: {"S": "SHARDS"}, SK: {"S": "P"}}


def lookup_key(key_hash: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": "K#" + key_hash}, SK: {"S": "K"}}


def listing_key(key_hash: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": "KEYS"}, SK: {"S": key_hash}}


def _api_key(key_hash: str, item: Item) -> ApiKey:
    return ApiKey(
        key_hash=key_hash,
        tenant=item["tenant"]["S"],
        active=item["active"]["BOOL"],
        created_at=int(item["created_at"]["N"]),
    )


class KeysTable:
    def __init__(self, db: DynamoDBClient, table: str) -> None:
        self._db = db
        self._table = table

    async def ping(self) -> None:
        await self._db.get_item(TableName=self._table, Key=PING_KEY)

    async def put(self, key: ApiKey) -> None:
        attributes: dict[str, dict[str, Any]] = {
            "tenant": {"S": key.tenant},
            "active": {"BOOL": key.active},
            "created_at": {"N": str(key.created_at)},
        }
        await self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**lookup_key(key.key_hash), **attributes},
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**listing_key(key.key_hash), **attributes},
                    }
                },
            ]
        )

    async def get(self, key_hash: str) -> ApiKey | None:
        response = await self._db.get_item(
            TableName=self._table, Key=lookup_key(key_hash), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _api_key(key_hash, item)

    async def list(self) -> list[ApiKey]:
        request: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "#kpk = :kpk",
            "ExpressionAttributeNames": _NAMES.of("#kpk"),
            "ExpressionAttributeValues": {":kpk": {"S": "KEYS"}},
            "ConsistentRead": True,
        }
        return [_api_key(item[SK]["S"], item) async for item in query_all(self._db, request)]

    async def revoke(self, key_hash: str) -> bool:
        def revoke(key: dict[str, dict[str, str]]) -> TransactWriteItemTypeDef:
            return {
                "Update": {
                    "TableName": self._table,
                    "Key": key,
                    "UpdateExpression": _REVOKE.update,
                    "ConditionExpression": _REVOKE.condition,
                    "ExpressionAttributeNames": _REVOKE.names,
                    "ExpressionAttributeValues": {":false": {"BOOL": False}},
                }
            }

        try:
            await self._db.transact_write_items(
                TransactItems=[revoke(lookup_key(key_hash)), revoke(listing_key(key_hash))]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            codes = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
            if "ConditionalCheckFailed" in codes:
                return False
            raise
        return True

    async def secret(self) -> bytes:
        # Made already (by this or another process)? Then the read below returns that one.
        with suppress(self._db.exceptions.ConditionalCheckFailedException):
            await self._db.put_item(
                TableName=self._table,
                Item={**SECRET_KEY, "value": {"B": secrets.token_bytes(32)}},
                ConditionExpression=_CREATE.condition,
                ExpressionAttributeNames=_CREATE.names,
            )
        response = await self._db.get_item(
            TableName=self._table, Key=SECRET_KEY, ConsistentRead=True
        )
        value: bytes = response["Item"]["value"]["B"]
        return value

    # -- the shard plan (`shards.py`) -----------------------------------------------------------

    async def read_plan(self) -> tuple[ShardPlan, int] | None:
        """The shared plan and its version, or None before any task made one."""
        response = await self._db.get_item(TableName=self._table, Key=PLAN_KEY, ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        return ShardPlan.decode(item["plan"]["S"]), int(item["version"]["N"])

    async def write_plan(self, plan: ShardPlan, version: int | None) -> bool:
        """Store `plan` if the stored one is still `version` (None: if there is none yet);
        False when another task changed it first."""
        try:
            if version is None:
                await self._db.put_item(
                    TableName=self._table,
                    Item={**PLAN_KEY, "plan": {"S": plan.encode()}, "version": {"N": "1"}},
                    ConditionExpression=_CREATE.condition,
                    ExpressionAttributeNames=_CREATE.names,
                )
            else:
                await self._db.update_item(
                    TableName=self._table,
                    Key=PLAN_KEY,
                    UpdateExpression=_REPLACE_PLAN.update,
                    ConditionExpression=_REPLACE_PLAN.condition,
                    ExpressionAttributeNames=_REPLACE_PLAN.names,
                    ExpressionAttributeValues={
                        ":plan": {"S": plan.encode()},
                        ":version": {"N": str(version)},
                        ":next": {"N": str(version + 1)},
                    },
                )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- leases: one task at a time does a shared chore -----------------------------------------

    async def take_lease(self, name: str, holder: str, until: int, now: int) -> bool:
        """Hold lease `name` until `until` if it is free, expired, or held by `holder` already."""
        try:
            await self._db.update_item(
                TableName=self._table,
                Key={PK: {"S": f"LEASE#{name}"}, SK: {"S": "L"}},
                UpdateExpression=_TAKE_LEASE.update,
                ConditionExpression=_TAKE_LEASE.condition,
                ExpressionAttributeNames=_TAKE_LEASE.names,
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":until": {"N": str(until)},
                    ":now": {"N": str(now)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
