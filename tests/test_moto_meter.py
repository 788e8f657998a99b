"""The test server's write-unit meter (`--meter`): every write billed as DynamoDB bills it, read
back from `GET /_meter`, after requests made through aiobotocore over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.conftest import moto_server
from tests.dynamo_units import item_size, number_size
from tests.meter_helpers import Spent, dynamodb, gsi, item, key, meter, new_table, usage

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.xdist_group("moto_meter")  # one worker starts the servers

KIB = 1024


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server("--meter") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
async def db(endpoint: str) -> AsyncIterator[DynamoDBClient]:
    async with dynamodb(endpoint) as client:
        yield client


async def test_a_put_of_one_and_a_half_kib_costs_2_units(db: DynamoDBClient, endpoint: str) -> None:
    table = await new_table(db)
    await db.put_item(TableName=table, Item=item("a", "1", size=1536))
    counted = await usage(endpoint, table)
    assert counted["wcu"] == 2
    assert counted["calls"] == {"PutItem": 1}
    assert counted["items"] == {"PutItem": 1}
    assert counted["partitions"]["a"]["wcu"] == 2


async def test_an_item_is_sized_by_dynamodbs_rules(db: DynamoDBClient, endpoint: str) -> None:
    table = await new_table(db)
    spent = Spent(endpoint, table)
    others: dict[str, Any] = {
        "n": {"N": "123.45"},  # 1 + 4: pairs 1|23|45 and an exponent byte
        "f": {"BOOL": True},  # 1 + 1
        "nothing": {"NULL": True},  # 7 + 1
        "l": {"L": [{"S": "ab"}, {"N": "1"}]},  # 1 + 3 + (1 + 2) + (1 + 2)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + 1 + 1 + 1
        "b": {"B": b"\x00\x01\x02\x03"},  # 1 + 4
        "ss": {"SS": ["a", "bc"]},  # 2 + 3
    }
    fixed = 5 + 2 + 8 + 10 + 7 + 5 + 5
    for size, units in ((1024, 1), (1025, 2)):
        padded = item("a", "b", size=size - fixed)  # pk, sk and p, names and values
        await db.put_item(TableName=table, Item={**padded, **others})
        await db.delete_item(TableName=table, Key=key("a", "b"))
        assert await spent() == 2 * units  # the put, then the delete of the same item


def test_numbers_are_sized_by_their_significant_digits_in_pairs() -> None:
    sizes = {"0": 1, "7": 2, "-7": 3, "10": 2, "100": 2, "123": 3, "1.5": 3, "0.050": 2, "1E+3": 2}
    assert {text: number_size(text) for text in sizes} == sizes
    assert number_size("1" * 38) == 20  # 19 pairs and the exponent
    assert item_size({"é": {"S": "ü"}}) == 4  # UTF-8 bytes, names included


async def test_a_put_that_replaces_an_item_costs_the_larger_of_the_two(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    spent = Spent(endpoint, table)
    await db.put_item(TableName=table, Item=item("a", "1", size=3 * KIB))
    assert await spent() == 3
    await db.put_item(TableName=table, Item=item("a", "1", size=100))
    assert await spent() == 3


async def test_an_update_that_shrinks_a_3_kib_item_to_1_kib_costs_3(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    spent = Spent(endpoint, table)
    await db.put_item(TableName=table, Item=item("a", "1", size=3 * KIB))
    assert await spent() == 3
    await db.update_item(
        TableName=table,
        Key=key("a", "1"),
        UpdateExpression="SET p = :p",
        ExpressionAttributeValues={":p": {"S": "x" * 900}},
    )
    assert await spent() == 3
    await db.update_item(
        TableName=table,
        Key=key("a", "1"),
        UpdateExpression="SET q = :q",
        ExpressionAttributeValues={":q": {"S": "y"}},
    )
    assert await spent() == 1


async def test_a_delete_costs_the_deleted_items_size_or_1(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    spent = Spent(endpoint, table)
    await db.put_item(TableName=table, Item=item("a", "1", size=int(2.5 * KIB)))
    assert await spent() == 3
    await db.delete_item(TableName=table, Key=key("a", "1"))
    assert await spent() == 3
    await db.delete_item(TableName=table, Key=key("a", "1"))
    assert await spent() == 1


async def test_a_write_whose_condition_fails_costs_the_existing_items_size(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    spent = Spent(endpoint, table)
    await db.put_item(TableName=table, Item=item("a", "1", size=int(2.5 * KIB)))
    assert await spent() == 3
    with pytest.raises(db.exceptions.ConditionalCheckFailedException):
        await db.put_item(
            TableName=table,
            Item=item("a", "1", size=10 * KIB),
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert await spent() == 3
    with pytest.raises(db.exceptions.ConditionalCheckFailedException):
        await db.delete_item(
            TableName=table, Key=key("b", "1"), ConditionExpression="attribute_exists(pk)"
        )
    assert await spent() == 1


async def test_a_keys_only_index_entry_costs_1_to_put_2_to_move_1_to_remove(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-g", "g", "gs"))
    spent, in_index = Spent(endpoint, table), Spent(endpoint, table, "by-g")

    async def update(expression: str, **values: str) -> None:
        if values:
            given = {f":{name}": {"S": text} for name, text in values.items()}
            await db.update_item(
                TableName=table,
                Key=key("a", "1"),
                UpdateExpression=expression,
                ExpressionAttributeValues=given,
            )
        else:
            await db.update_item(TableName=table, Key=key("a", "1"), UpdateExpression=expression)

    await db.put_item(TableName=table, Item=item("a", "1", size=3 * KIB - 100, g="red", gs="1"))
    assert (await spent(), await in_index()) == (3, 1)
    await update("SET gs = :gs", gs="2")  # the entry's sort key: a delete and a put
    assert (await spent(), await in_index()) == (3, 2)
    await update("SET note = :o", o="not projected")
    assert (await spent(), await in_index()) == (3, 0)
    await update("SET g = :g", g="blue")  # another index partition
    assert await in_index() == 2
    await update("REMOVE gs")  # leaves the index
    assert await in_index() == 1
    partitions = (await usage(endpoint, table, "by-g"))["partitions"]
    # red: the put, the move's delete and put, the delete; blue: a put, then the removal
    assert {name: counted["wcu"] for name, counted in partitions.items()} == {"red": 4, "blue": 2}
    assert partitions["blue"]["items"] == {"UpdateItem": 2}


async def test_an_all_projection_index_entry_costs_the_items_size(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-g", "g", projection="ALL"))
    spent, in_index = Spent(endpoint, table), Spent(endpoint, table, "by-g")
    await db.put_item(TableName=table, Item=item("a", "1", size=int(1.5 * KIB), g="red"))
    assert (await spent(), await in_index()) == (2, 2)
    await db.update_item(
        TableName=table,
        Key=key("a", "1"),
        UpdateExpression="SET p = :p",
        ExpressionAttributeValues={":p": {"S": "x" * 3 * KIB}},
    )
    assert (await spent(), await in_index()) == (4, 4)  # the larger of the entry before and after
    await db.put_item(TableName=table, Item=item("b", "1", size=5 * KIB))  # no `g`: not indexed
    assert (await spent(), await in_index()) == (5, 0)


async def test_an_include_projection_bills_changes_of_included_attributes_only(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-g", "g", projection="INCLUDE", included=("status",)))
    in_index = Spent(endpoint, table, "by-g")
    await db.put_item(TableName=table, Item=item("a", "1", size=2 * KIB, g="red", status="new"))
    assert await in_index() == 1
    for attribute, value, units in (("status", "old", 1), ("p", "short now", 0)):
        await db.update_item(
            TableName=table,
            Key=key("a", "1"),
            UpdateExpression="SET #a = :v",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": {"S": value}},
        )
        assert await in_index() == units


async def test_a_transactions_items_cost_double_and_its_index_writes_do_not(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-g", "g"))
    spent, in_index = Spent(endpoint, table), Spent(endpoint, table, "by-g")
    await db.put_item(TableName=table, Item=item("c", "1", size=int(1.5 * KIB)))
    assert await spent() == 2
    await db.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": item("a", "1", size=int(1.5 * KIB), g="red")}},
            {"Put": {"TableName": table, "Item": item("b", "1", size=int(1.5 * KIB), g="red")}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": key("c", "1"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )
    assert (await spent(), await in_index()) == (2 * 2 + 2 * 2 + 2 * 2, 1 + 1)
    assert (await usage(endpoint, table))["items"]["TransactWriteItems"] == 3


async def test_a_cancelled_transaction_bills_each_item_once_and_applies_nothing(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-g", "g"))
    spent, in_index = Spent(endpoint, table), Spent(endpoint, table, "by-g")
    await db.put_item(TableName=table, Item=item("a", "1", size=int(1.5 * KIB)))
    assert await spent() == 2
    with pytest.raises(db.exceptions.TransactionCanceledException):
        await db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item("b", "1", g="red")}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": item("a", "1", g="red"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert (await spent(), await in_index()) == (1 + 2, 0)
    assert "Item" not in await db.get_item(TableName=table, Key=key("b", "1"))


async def test_a_batch_of_3_puts_bills_3_items(db: DynamoDBClient, endpoint: str) -> None:
    table = await new_table(db)
    answer = await db.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": item("a", str(n))}} for n in range(3)]}
    )
    assert answer["UnprocessedItems"] == {}
    counted = await usage(endpoint, table)
    assert (counted["wcu"], counted["items"], counted["calls"]) == (
        3,
        {"BatchWriteItem": 3},
        {"BatchWriteItem": 1},
    )


async def test_reads_are_counted_by_call_and_by_items_returned(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db, gsi("by-g", "g"))
    for n in range(3):
        await db.put_item(TableName=table, Item=item("a", str(n), g="red"))
    await db.query(
        TableName=table,
        KeyConditionExpression="pk = :a",
        ExpressionAttributeValues={":a": {"S": "a"}},
    )
    await db.query(
        TableName=table,
        IndexName="by-g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "red"}},
        Limit=2,
    )
    await db.get_item(TableName=table, Key=key("a", "0"))
    await db.get_item(TableName=table, Key=key("a", "9"))
    await db.batch_get_item(RequestItems={table: {"Keys": [key("a", "1"), key("a", "2")]}})
    counted = await usage(endpoint, table)
    assert counted["calls"] == {"PutItem": 3, "Query": 2, "GetItem": 2, "BatchGetItem": 1}
    assert counted["items"] == {"PutItem": 3, "Query": 3 + 2, "GetItem": 1, "BatchGetItem": 2}
    through_index = await usage(endpoint, table, "by-g")
    assert (through_index["calls"]["Query"], through_index["items"]["Query"]) == (1, 2)


async def test_reset_answers_the_counts_and_starts_again_from_zero(
    db: DynamoDBClient, endpoint: str
) -> None:
    table = await new_table(db)
    await db.put_item(TableName=table, Item=item("a", "1"))
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{endpoint}/_meter/reset")
    assert answer.status_code == 200
    assert answer.json()["tables"][table]["wcu"] == 1
    after = await meter(endpoint)
    assert (after["wcu"], after["tables"], after["partition_wcu"]) == (0, {}, None)


async def test_a_batch_of_more_than_25_writes_is_refused(moto_endpoint: str) -> None:
    # no options needed: the server refuses it as DynamoDB does
    async with dynamodb(moto_endpoint) as db:
        table = await new_table(db)
        with pytest.raises(ClientError) as refused:
            await db.batch_write_item(
                RequestItems={
                    table: [{"PutRequest": {"Item": item("a", str(n))}} for n in range(26)]
                }
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        found = await db.query(
            TableName=table,
            KeyConditionExpression="pk = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
        )
        assert found["Count"] == 0
