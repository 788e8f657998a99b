"""Single-event creates that arrive together go to DynamoDB together, like SQLite's group commit.

Every create made within one turn of the event loop joins one `BatchWriteItem` (25 items and
`BYTE_BUDGET` bytes at most; more make more calls, side by side): one call where there were
many, which is most of the CPU a create costs. Under load, when `MAX_IN_FLIGHT` writes are
out already, creates gather until one returns, as SQLite's group commit gathers them.

A batch write is a blind put and is billed once, where a conditional create in a transaction
is billed twice. Blind is safe here because:

- a new event's id is fresh, so there is nothing to overwrite on the first attempt, and items
  DynamoDB names as unprocessed were not written, so they are sent again as they are;
- the client that sends batches (`batch_client.py`) never retries by itself. When an answer is
  lost (a timeout, a dropped connection, a 5xx), some items may have landed and been claimed,
  acknowledged or deleted since: each item of that batch is then created again
  *conditionally*, one call each, and one that finds its own item (or its tombstone) has
  succeeded without changing it;
- payload items (written once, never updated) go before their events, so no event is ever
  visible without its payload. One left behind by a failed create is never shown and expires.

Each create waits for its own item only: one producer's failure is that producer's 503 alone.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from service.store.base import DuplicateEventId, StoreUnavailable
from service.store.dynamo_client import Names, Op, error_code, run_all
from service.store.items import PK, is_own

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from service.store.batch_client import BatchClient

MAX_BATCH = 25  # DynamoDB's limit for BatchWriteItem
# Writes in flight at once, like the SQLite writer's one transaction at a time: creates that
# come while they are all out wait for the next, and go together (in more than one call when
# they are more than a batch holds).
MAX_IN_FLIGHT = 2
BYTE_BUDGET = 4 * 1024 * 1024  # well under BatchWriteItem's 16 MB
RETRIES = 5  # rounds for items DynamoDB names as unprocessed, or a throttled batch
THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
_CREATE = Op(Names({"#pk": PK}), condition="attribute_not_exists(#pk)")

Item = dict[str, Any]


@dataclass(slots=True, eq=False)
class _Create:
    item: Item
    payload: Item | None
    # Cancelled with its caller: the write goes on for the others, its outcome unread.
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Coalescer:
    def __init__(self, db: DynamoDBClient, batches: BatchClient, table: str) -> None:
        self._db = db  # retries as configured: for conditional creates
        self._batches = batches  # never retries by itself
        self._table = table
        self._waiting: list[_Create] = []
        self._writing: set[asyncio.Task[None]] = set()
        self.calls = 0  # BatchWriteItem calls made, for tests and benchmarks

    async def create(self, item: Item, payload: Item | None) -> None:
        """Store one new event (and its payload item); raise `StoreUnavailable` or
        `DuplicateEventId` when it could not be."""
        create = _Create(item, payload)
        if not self._waiting and len(self._writing) < MAX_IN_FLIGHT:
            asyncio.get_running_loop().call_soon(self._flush)
        self._waiting.append(create)
        await create.done

    async def put_blind(self, items: Sequence[Item]) -> None:
        """Put payload items (written once, never updated: a repeated put changes nothing) for a
        transactional create; raise `StoreUnavailable` unless all are stored."""
        chunks = _chunks(items, [_Create(item, None) for item in items])
        for chunk in chunks:
            try:
                left = await self._batch([create.item for create in chunk], blind=True)
            except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
                raise _unavailable(error) from error
            if left:
                raise StoreUnavailable("DynamoDB is unavailable")

    async def close(self) -> None:
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    def _flush(self) -> None:
        creates, self._waiting = self._waiting, []
        if not creates:
            return
        task = asyncio.create_task(self._write(creates))
        self._writing.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        if self._waiting:  # what came while every write was in flight goes now, together
            self._flush()

    async def _write(self, creates: list[_Create]) -> None:
        try:
            with_payload = [c for c in creates if c.payload is not None]
            if with_payload:
                stored = await self._put_payloads(with_payload)
                creates = [c for c in creates if c.payload is None or c in stored]
            await run_all(
                self._put_events(chunk) for chunk in _chunks([c.item for c in creates], creates)
            )
        except BaseException as error:  # a bug: no create may wait forever
            for create in creates:
                _fail(
                    create, error if isinstance(error, Exception) else StoreUnavailable("stopped")
                )
            raise

    async def _put_payloads(self, creates: list[_Create]) -> set[_Create]:
        """Write the payload items; the creates whose payload could not be stored fail."""
        stored: set[_Create] = set()

        async def put(chunk: list[_Create]) -> None:
            items = [c.payload for c in chunk if c.payload is not None]
            try:
                left = await self._batch(items, blind=True)
            except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
                for create in chunk:
                    _fail(create, _unavailable(error))
                return
            for create in chunk:
                if any(create.payload is item for item in left):
                    _fail(create, StoreUnavailable("DynamoDB is unavailable"))
                else:
                    stored.add(create)

        await run_all(put(chunk) for chunk in _chunks([c.payload or {} for c in creates], creates))
        return stored

    async def _put_events(self, chunk: list[_Create]) -> None:
        items = [c.item for c in chunk]
        try:
            left = await self._batch(items, blind=False)
        except ClientError as error:
            if error_code(error) in THROTTLED:
                for create in chunk:
                    _fail(create, _unavailable(error))
                return
            await run_all(self._put_conditionally(create) for create in chunk)
            return
        except (BotocoreConnectionError, HTTPClientError):  # the answer was lost
            await run_all(self._put_conditionally(create) for create in chunk)
            return
        for create in chunk:
            if any(create.item is item for item in left):
                _fail(create, StoreUnavailable("DynamoDB is unavailable"))
            elif not create.done.done():
                create.done.set_result(None)

    async def _batch(self, items: Sequence[Item], *, blind: bool) -> list[Item]:
        """Put `items` with BatchWriteItem, sending unprocessed ones again a few rounds (and a
        throttled whole batch; `blind` items, written once and never changed, after a lost
        answer too); return those still unprocessed."""
        pending = list(items)
        for attempt in range(RETRIES):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.025 * 2**attempt))
            self.calls += 1
            try:
                left = await self._batches.batch_write(self._table, pending)
            except ClientError as error:
                retry = error_code(error) in THROTTLED or (blind and _ambiguous(error))
                if not retry or attempt == RETRIES - 1:
                    raise
                continue  # nothing was written, or it does not matter
            except (BotocoreConnectionError, HTTPClientError):
                if not blind or attempt == RETRIES - 1:
                    raise
                continue
            if not left:
                return []
            keys = {_key(item) for item in left}  # the answer holds copies: match by key
            pending = [item for item in pending if _key(item) in keys]
        return pending

    async def _put_conditionally(self, create: _Create) -> None:
        try:
            await self._db.put_item(
                TableName=self._table,
                Item=create.item,
                ConditionExpression=_CREATE.condition,
                ExpressionAttributeNames=_CREATE.names,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            found: Any = error.response.get("Item")
            if is_own(found, create.item):
                create.done.set_result(None)
            else:
                _fail(create, DuplicateEventId(create.item["sk"]["S"]))
        except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
            _fail(create, _unavailable(error))
        else:
            create.done.set_result(None)


def _ambiguous(error: ClientError) -> bool:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500


def _key(item: Item) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


def _chunks(items: Sequence[Item], creates: Sequence[_Create]) -> list[list[_Create]]:
    """Creates grouped so that each group's items fit one BatchWriteItem."""
    chunks: list[list[_Create]] = []
    size = 0
    for item, create in zip(items, creates, strict=True):
        # Only the payload varies much: the rest of an item is well under 1 KB.
        item_bytes = len(item["pl"]["B"]) + 1024 if "pl" in item else 1024
        if not chunks or len(chunks[-1]) == MAX_BATCH or size + item_bytes > BYTE_BUDGET:
            chunks.append([])
            size = 0
        chunks[-1].append(create)
        size += item_bytes
    return chunks


def _unavailable(error: Exception) -> StoreUnavailable:
    failure = StoreUnavailable("DynamoDB is unavailable")
    failure.__cause__ = error
    return failure


def _fail(create: _Create, error: Exception) -> None:
    if not create.done.done():
        create.done.set_exception(error)
