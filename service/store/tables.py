"""`trigger-api tables create`: the DynamoDB tables, from `schema.py`, made if missing.

Run by an operator with the rights to create tables; the service itself never creates any.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, cast

import aioboto3
from botocore.exceptions import ClientError

from service.store import schema
from service.store.dynamo_client import client_config, unavailable_on_failure

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import CreateTableInputTypeDef


@unavailable_on_failure
async def create_tables(
    events_table: str, keys_table: str, *, endpoint_url: str | None, region: str | None
) -> None:
    """Create both tables and enable TTL, unless that is done already (idempotent)."""
    session = aioboto3.Session()
    async with session.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region, config=client_config()
    ) as db:
        for name, table in ((events_table, schema.EVENTS), (keys_table, schema.API_KEYS)):
            request = cast("CreateTableInputTypeDef", table.create_table_request(name))
            with suppress(db.exceptions.ResourceInUseException):
                await db.create_table(**request)
            waiter = db.get_waiter("table_exists")
            await waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            if table.ttl_attribute is not None:
                await _enable_ttl(db, name, table.ttl_attribute)


async def _enable_ttl(db: DynamoDBClient, table: str, attribute: str) -> None:
    described = await db.describe_time_to_live(TableName=table)
    if described["TimeToLiveDescription"].get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    try:
        await db.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )
    except ClientError as error:
        # Another process enabled it between our describe and update.
        if "already enabled" not in str(error):
            raise
