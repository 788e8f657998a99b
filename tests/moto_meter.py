"""The write-unit meter and the partition-limit double, hooked into moto's DynamoDB handler.

`install` wraps the handler's methods for the writes (PutItem, UpdateItem, DeleteItem,
TransactWriteItems, BatchWriteItem) and the reads (GetItem, BatchGetItem, Query, Scan). A
wrapped write copies the items the request names, lets moto apply the request, bills the change
(`dynamo_units`), and — with a partition budget — undoes it and answers as DynamoDB does when a
partition lacks the units. The server's lock makes each request, wrapper included, atomic.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from dynamo_meter import Bucket, Buckets, Meter
from dynamo_units import Charge, IndexSchema, TableSchema, condition_only, item_write
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    DynamodbException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import GlobalSecondaryIndex, Table
from moto.dynamodb.responses import DynamoHandler

Method = Callable[[DynamoHandler], Any]

WRITES = {
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "TransactWriteItems": "transact_write_items",
    "BatchWriteItem": "batch_write_item",
}
READS = {"GetItem": "get_item", "BatchGetItem": "batch_get_item", "Query": "query", "Scan": "scan"}

# DynamoDB's messages, by (on-demand table?, only index partitions short?)
_BUSY = {
    (True, False): "Throughput exceeds the current capacity of your table or index. DynamoDB is"
    " automatically scaling your table or index so please try again shortly. If exceptions"
    " persist, check if you have a hot key:"
    " https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
    (True, True): "Throughput exceeds the current capacity for one or more global secondary"
    " indexes. DynamoDB is automatically scaling your index.",
    (False, False): "The level of configured provisioned throughput for the table was exceeded."
    " Consider increasing your provisioning level with the UpdateTable API.",
    (False, True): "The level of configured provisioned throughput for one or more global"
    " secondary indexes of the table was exceeded. Consider increasing your provisioning level"
    " for the under-provisioned global secondary indexes with the UpdateTable API",
}


class ThroughputExceeded(DynamodbException):
    """DynamoDB's answer to a write that a partition lacks the units for."""

    def __init__(self, message: str, reasons: list[dict[str, str]]) -> None:
        error_type = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
        super().__init__(error_type, message)
        self.description = json.dumps(
            {"__type": error_type, "message": message, "ThrottlingReasons": reasons}
        )


def restore(
    table: Table, hash_value: DynamoType, range_value: DynamoType | None, item: Item | None
) -> None:
    """Put back an item as it was (None: absent)."""
    if item is None:
        table.delete_item(hash_value, range_value)
    elif range_value is None:
        table.items[hash_value] = item  # type: ignore[assignment]
    else:
        table.items[hash_value][range_value] = item


@dataclass
class Target:
    """An item a write request names, as it was before the request."""

    action: str  # Put, Update, Delete or ConditionCheck
    named: str  # the table, as the request names it
    request: dict[str, Any]  # the request's entry for the item (BatchWriteItem may return it)
    table: Table
    key: dict[str, Any]
    hash_value: DynamoType
    range_value: DynamoType | None
    before: Item | None

    def current(self) -> Item | None:
        return self.table.get_item(self.hash_value, self.range_value)

    def restore(self) -> None:
        restore(self.table, self.hash_value, self.range_value, self.before)


def _target(
    backend: DynamoDBBackend, action: str, named: str, request: dict[str, Any], spec: Any
) -> Target:
    table = backend.get_table(named)
    if action == "Put":
        names = (table.hash_key_attr, table.range_key_attr)
        key = {name: spec["Item"][name] for name in names if name is not None}
    else:
        key = spec["Key"]
    hash_value, range_value = backend.get_keys_value(table, key)
    # a copy: moto's UpdateItem changes the stored item in place
    before = copy.deepcopy(table.get_item(hash_value, range_value))
    return Target(action, named, request, table, key, hash_value, range_value, before)


def _targets(operation: str, backend: DynamoDBBackend, body: dict[str, Any]) -> list[Target]:
    if operation == "TransactWriteItems":
        return [
            _target(backend, action, spec["TableName"], entry, spec)
            for entry in body["TransactItems"]
            for action, spec in entry.items()
        ]
    if operation == "BatchWriteItem":
        return [
            _target(backend, action, named, entry, entry[f"{action}Request"])
            for named, entries in body["RequestItems"].items()
            for entry in entries
            for action in ("Put", "Delete")
            if f"{action}Request" in entry
        ]
    action = operation.removesuffix("Item")
    return [_target(backend, action, body["TableName"], body, body)]


def _name(backend: DynamoDBBackend, named: str) -> str:
    try:
        return backend.get_table(named).name  # the request may name the table by its ARN
    except Exception:
        return named


def _tables(backend: DynamoDBBackend, body: dict[str, Any]) -> list[str]:
    if "TableName" in body:
        named = [body["TableName"]]
    elif "TransactItems" in body:
        named = [
            spec.get("TableName") for entry in body["TransactItems"] for spec in entry.values()
        ]
    else:
        named = list(body.get("RequestItems", {}))
    return [_name(backend, name) for name in named if isinstance(name, str)]


def _index(index: GlobalSecondaryIndex) -> IndexSchema:
    keys = {key["KeyType"]: key["AttributeName"] for key in index.schema}
    projection = index.projection or {}
    return IndexSchema(
        name=index.name,
        hash_key=keys["HASH"],
        range_key=keys.get("RANGE"),
        projection=projection.get("ProjectionType", "ALL"),
        included=frozenset(projection.get("NonKeyAttributes", [])),
    )


def _schema(table: Table) -> TableSchema:
    indexes = tuple(_index(index) for index in table.global_indexes or [])
    return TableSchema(table.name, table.hash_key_attr, table.range_key_attr, indexes)


def _attributes(item: Item | None) -> dict[str, Any] | None:
    return None if item is None else item.to_json()["Attributes"]


def _charges(operation: str, target: Target, failed: bool) -> list[Charge]:
    schema, before = _schema(target.table), _attributes(target.before)
    if failed:  # nothing applied: a failed condition, or a cancelled transaction
        return condition_only(schema, target.key, before)
    factor = 2 if operation == "TransactWriteItems" else 1
    if target.action == "ConditionCheck":
        return condition_only(schema, target.key, before, factor=factor)
    after = _attributes(target.current())
    return item_write(schema, target.key, before, after, factor=factor)


def _busy(table: Table, short: Iterable[Bucket]) -> str:
    on_demand = table.billing_mode == "PAY_PER_REQUEST"
    return _BUSY[on_demand, all(index is not None for _, index, _ in short)]


def _reason(table: Table, index: str | None) -> dict[str, str]:
    if index is None:
        return {"reason": "TableWriteKeyRangeThroughputExceeded", "resource": table.table_arn}
    resource = f"{table.table_arn}/index/{index}"
    return {"reason": "IndexWriteKeyRangeThroughputExceeded", "resource": resource}


def _exceeded(targets: list[Target], short: set[Bucket]) -> ThroughputExceeded:
    tables = {target.table.name: target.table for target in targets}
    resources = sorted({(table, index or "") for table, index, _ in short})
    reasons = [_reason(tables[table], index or None) for table, index in resources]
    return ThroughputExceeded(_busy(tables[resources[0][0]], short), reasons)


def _throttled(
    operation: str, targets: list[Target], charges: list[list[Charge]], short: set[Bucket]
) -> DynamodbException:
    if operation != "TransactWriteItems":
        return _exceeded(targets, short)
    errors: list[tuple[str | None, str | None, None]] = []
    for target, action_charges in zip(targets, charges, strict=True):
        lacking = {charge.bucket for charge in action_charges} & short
        errors.append(
            ("ThrottlingError", _busy(target.table, lacking), None)
            if lacking
            else (None, None, None)
        )
    return TransactionCanceledException(errors)


def _batch(
    result: ActionResult,
    targets: list[Target],
    charges: list[list[Charge]],
    meter: Meter,
    buckets: Buckets,
) -> ActionResult:
    """Keep the writes whose partitions have the units, in order; undo and return the others."""
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    admitted: list[Charge] = []
    lacking: set[Bucket] = set()
    for target, item_charges in zip(targets, charges, strict=True):
        short = buckets.admit(item_charges)
        if short:
            target.restore()
            meter.refused("BatchWriteItem", short)
            lacking |= short
            unprocessed.setdefault(target.named, []).append(target.request)
        else:
            admitted += item_charges
    meter.billed("BatchWriteItem", admitted)
    if not admitted:  # none could be processed: DynamoDB then refuses the call
        raise _exceeded(targets, lacking)
    return ActionResult({**result.result, "UnprocessedItems": unprocessed})  # type: ignore[dict-item]


def _metered_write(
    operation: str, original: Method, meter: Meter, buckets: Buckets | None
) -> Method:
    def write(handler: DynamoHandler) -> Any:
        backend, body = handler.dynamodb_backend, handler.body
        meter.requested(operation, _tables(backend, body))
        try:
            targets = _targets(operation, backend, body)
        except Exception:  # a malformed request: moto refuses it as DynamoDB would
            return original(handler)
        failure: DynamodbException | None = None
        try:
            result = original(handler)
        except (ConditionalCheckFailed, TransactionCanceledException) as error:
            result, failure = None, error
        charges = [_charges(operation, target, failure is not None) for target in targets]
        if operation == "BatchWriteItem" and buckets is not None:
            return _batch(result, targets, charges, meter, buckets)
        short = buckets.admit(chain(*charges)) if buckets is not None else set()
        if short:
            for target in reversed(targets):
                target.restore()
            meter.refused(operation, short)
            raise _throttled(operation, targets, charges, short)
        meter.billed(operation, chain(*charges))
        if failure is not None:
            raise failure
        return result

    return write


def _metered_read(operation: str, original: Method, meter: Meter) -> Method:
    def read(handler: DynamoHandler) -> Any:
        backend, body = handler.dynamodb_backend, handler.body
        meter.requested(operation, _tables(backend, body))
        result = original(handler)
        document: dict[str, Any] = result.result
        if operation == "BatchGetItem":
            for named, items in document.get("Responses", {}).items():
                meter.returned(operation, _name(backend, named), None, len(items))
        else:
            returned = document.get("Count", 1 if document.get("Item") else 0)
            table = _name(backend, body["TableName"])
            meter.returned(operation, table, body.get("IndexName"), returned)
        return result

    return read


def install(meter: Meter, buckets: Buckets | None) -> None:
    """Meter every request from now on; with `buckets`, refuse writes they lack the units for."""
    for operation, name in WRITES.items():
        original = getattr(DynamoHandler, name)
        setattr(DynamoHandler, name, _metered_write(operation, original, meter, buckets))
    for operation, name in READS.items():
        setattr(DynamoHandler, name, _metered_read(operation, getattr(DynamoHandler, name), meter))
