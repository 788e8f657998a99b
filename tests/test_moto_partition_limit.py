"""The test server's partition-limit double (`--partition-wcu`): writes to a hot partition-key
value, of a table or of an index, refused as DynamoDB refuses them, and seen through aiobotocore
as the service's client sees them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import moto_server
from tests.meter_helpers import dynamodb, gsi, item, key, new_table, usage

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import WriteRequestTypeDef

pytestmark = pytest.mark.xdist_group("moto_meter")  # one worker starts the servers

BUDGET = 5  # write units a second, per partition-key value
KIB = 1024
TABLE_BUSY = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically"
    " scaling your table or index so please try again shortly. If exceptions persist, check if"
    " you have a hot key:"
    " https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)
INDEX_BUSY = (
    "Throughput exceeds the current capacity for one or more global secondary indexes."
    " DynamoDB is automatically scaling your index."
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server("--partition-wcu", str(BUDGET)) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
async def db(endpoint: str) -> AsyncIterator[DynamoDBClient]:
    async with dynamodb(endpoint) as client:  # one attempt: every throttle reaches the test
        yield client


async def put(db: DynamoDBClient, table: str, attributes: dict[str, Any]) -> bool:
    """Whether the put was written (False: throttled)."""
    try:
        await db.put_item(TableName=table, Item=attributes)
    except db.exceptions.ProvisionedThroughputExceededException:
        return False
    return True


async def overheat(
    db: DynamoDBClient, table: str, pk: str, sk: str = "heat", **strings: str
) -> None:
    """Put partition `pk` (and the index partitions `strings` name) seconds into debt: a full
    bucket admits one write of 8 seconds' worth of units."""
    assert await put(db, table, item(pk, sk, size=8 * BUDGET * KIB, **strings))


def throttling_reasons(error: ClientError) -> list[dict[str, str]]:
    """What botocore parsed of the answer's `ThrottlingReasons` (not in its typed shape)."""
    parsed: dict[str, Any] = dict(error.response)
    return list(parsed["ThrottlingReasons"])


async def exists(db: DynamoDBClient, table: str, pk: str, sk: str) -> bool:
    return "Item" in await db.get_item(TableName=table, Key=key(pk, sk))


async def test_a_hot_partition_refuses_writes_beyond_its_budget(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    started = time.monotonic()
    outcomes = [await put(db, table, item("hot", str(n))) for n in range(30)]
    elapsed = time.monotonic() - started
    written = sum(outcomes)
    assert BUDGET <= written <= BUDGET + BUDGET * elapsed + 1  # the burst, then the refill
    assert written < 30
    counted = await usage(endpoint, table)
    assert (counted["wcu"], counted["throttled"]) == (written, {"PutItem": 30 - written})
    assert counted["partitions"]["hot"]["throttled"] == {"PutItem": 30 - written}
    found = await db.query(
        TableName=table,
        KeyConditionExpression="pk = :hot",
        ExpressionAttributeValues={":hot": {"S": "hot"}},
        Select="COUNT",
    )
    assert found["Count"] == written


async def test_a_refused_put_raises_provisioned_throughput_exceeded(db: DynamoDBClient) -> None:
    table = await new_table(db)
    await overheat(db, table, "hot")
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException) as refused:
        await db.put_item(TableName=table, Item=item("hot", "1"))
    answer = refused.value.response
    assert answer["Error"] == {
        "Code": "ProvisionedThroughputExceededException",
        "Message": TABLE_BUSY,
    }
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0
    arn = (await db.describe_table(TableName=table))["Table"]["TableArn"]
    assert throttling_reasons(refused.value) == [
        {"reason": "TableWriteKeyRangeThroughputExceeded", "resource": arn}
    ]
    assert not await exists(db, table, "hot", "1")


async def test_refused_updates_and_deletes_change_nothing(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    await overheat(db, table, "hot", "1", status="new")
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        await db.update_item(
            TableName=table,
            Key=key("hot", "1"),
            UpdateExpression="SET #s = :old",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":old": {"S": "old"}},
        )
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        await db.delete_item(TableName=table, Key=key("hot", "1"))
    still = await db.get_item(TableName=table, Key=key("hot", "1"))  # reads are not throttled
    assert still["Item"]["status"] == {"S": "new"}
    assert (await usage(endpoint, table))["throttled"] == {"UpdateItem": 1, "DeleteItem": 1}


async def test_a_hot_index_partition_refuses_writes_to_cold_table_partitions(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-status", "status", projection="ALL"))
    await overheat(db, table, "a", status="new")
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException) as refused:
        await db.put_item(TableName=table, Item=item("b", "1", status="new"))
    answer = refused.value.response
    assert answer["Error"]["Message"] == INDEX_BUSY
    arn = (await db.describe_table(TableName=table))["Table"]["TableArn"]
    assert throttling_reasons(refused.value) == [
        {"reason": "IndexWriteKeyRangeThroughputExceeded", "resource": f"{arn}/index/by-status"}
    ]
    assert not await exists(db, table, "b", "1")
    assert await put(db, table, item("c", "1", status="old"))  # another index partition
    partitions = (await usage(endpoint, table, "by-status"))["partitions"]
    assert (partitions["new"]["throttled"], partitions["old"]["throttled"]) == ({"PutItem": 1}, {})


async def test_a_transaction_with_a_hot_item_is_cancelled_with_throttling_error(
    db: DynamoDBClient,
) -> None:
    table = await new_table(db, gsi("by-status", "status", projection="ALL"))
    await overheat(db, table, "hot")
    await overheat(db, table, "warm", status="busy")
    for items, reasons in (
        (
            [item("cold", "1"), item("hot", "1")],
            [{"Code": "None"}, {"Code": "ThrottlingError", "Message": TABLE_BUSY}],
        ),
        (
            [item("cold", "2", status="busy"), item("cold", "3")],
            [{"Code": "ThrottlingError", "Message": INDEX_BUSY}, {"Code": "None"}],
        ),
    ):
        with pytest.raises(db.exceptions.TransactionCanceledException) as cancelled:
            await db.transact_write_items(
                TransactItems=[{"Put": {"TableName": table, "Item": one}} for one in items]
            )
        answer = cancelled.value.response
        assert answer["CancellationReasons"] == reasons
        codes = ", ".join(reason["Code"] for reason in reasons)
        assert answer["Error"] == {
            "Code": "TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific"
            f" reasons [{codes}]",
        }
        for one in items:
            assert not await exists(db, table, one["pk"]["S"], one["sk"]["S"])


async def test_a_batch_writes_what_fits_and_returns_the_rest_unprocessed(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    await overheat(db, table, "hot")
    hot_put: WriteRequestTypeDef = {"PutRequest": {"Item": item("hot", "1")}}
    hot_delete: WriteRequestTypeDef = {"DeleteRequest": {"Key": key("hot", "heat")}}
    cold: list[WriteRequestTypeDef] = [
        {"PutRequest": {"Item": item("cold", str(n))}} for n in range(2)
    ]
    answer = await db.batch_write_item(
        RequestItems={table: [cold[0], hot_put, cold[1], hot_delete]}
    )
    assert answer["UnprocessedItems"] == {table: [hot_put, hot_delete]}
    assert [await exists(db, table, "cold", str(n)) for n in range(2)] == [True, True]
    assert not await exists(db, table, "hot", "1")
    assert await exists(db, table, "hot", "heat")
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        await db.batch_write_item(RequestItems={table: [hot_put]})  # nothing fits: refused
    counted = await usage(endpoint, table)
    assert counted["items"]["BatchWriteItem"] == 2
    assert counted["throttled"]["BatchWriteItem"] == 3  # one per item returned or refused


async def test_partitions_are_independent(db: DynamoDBClient) -> None:
    table = await new_table(db)
    await overheat(db, table, "hot")
    assert [await put(db, table, item("cold", str(n))) for n in range(BUDGET)] == [True] * BUDGET
    assert not await put(db, table, item("hot", "1"))


async def test_a_partition_refills_with_time(db: DynamoDBClient) -> None:
    table = await new_table(db)
    for n in range(100):
        if not await put(db, table, item("hot", str(n))):
            break
    else:
        pytest.fail("never throttled")
    await asyncio.sleep(1.0)  # BUDGET units come back
    assert await put(db, table, item("hot", "after"))


async def test_botocore_retries_a_throttled_write_before_raising(endpoint: str) -> None:
    async with dynamodb(endpoint, attempts=3) as patient:  # the service's default attempts
        table = await new_table(patient)
        await overheat(patient, table, "hot")
        with pytest.raises(patient.exceptions.ProvisionedThroughputExceededException) as refused:
            await patient.put_item(TableName=table, Item=item("hot", "1"))
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    hot = (await usage(endpoint, table))["partitions"]["hot"]
    assert hot["throttled"] == {"PutItem": 3}
