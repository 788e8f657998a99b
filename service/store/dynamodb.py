"""The DynamoDB adapter: the low-level aiobotocore client and hand-built attribute values.

Item layout is in `schema`. Every event also carries `exp` (expiry, ms) because DynamoDB TTL
deletes late: reads filter on `exp`, and every state change is conditional on it, so an expired
item behaves as absent everywhere. `lease` is the lease's end in ms (0 = none).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import random
import re
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing, suppress
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from service.store import schema
from service.store.base import (
    ApiKey,
    Claim,
    DuplicateEventId,
    Event,
    ExtendOutcome,
    IdempotencyRecord,
    NewEvent,
    RedriveOutcome,
    Refusal,
    ReleaseOutcome,
    Status,
    Store,
    StoreUnavailable,
    new_lease_token,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.literals import ReturnValueType
    from types_aiobotocore_dynamodb.type_defs import (
        CreateTableInputTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

Item = Mapping[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


def _client_config() -> AioConfig:
    """A fresh config for each client: botocore rewrites the `retries` dict it is given, so a
    shared one would fix the first client's attempts for every later client."""
    return AioConfig(
        # Standard retries; the number of attempts is the standard AWS setting
        # (`AWS_MAX_ATTEMPTS`, or `max_attempts` in the AWS config file), 3 when unset.
        retries={"mode": "standard"},
        connect_timeout=1.0,
        read_timeout=3.0,
        max_pool_connections=64,
        # DynamoDB validates every request itself; botocore's client-side pass costs CPU per call.
        parameter_validation=False,
        # A fixed User-Agent: botocore otherwise rebuilds it twice per call (~0.2 ms of CPU).
        user_agent="trigger-api",
    )


# Key attributes come from the schema; the rest are this adapter's own.
_PK = schema.EVENTS.partition_key
_SK = schema.EVENTS.sort_key
_STATUS_INDEX = next(i for i in schema.EVENTS.indexes if i.name == schema.STATUS_INDEX)
_GPK = _STATUS_INDEX.partition_key
_GSK = _STATUS_INDEX.sort_key
_TTL = schema.TTL_ATTRIBUTE
_KPK = schema.API_KEYS.partition_key
_KSK = schema.API_KEYS.sort_key

_ATTRIBUTES = {
    "#pk": _PK,
    "#sk": _SK,
    "#gpk": _GPK,
    "#gsk": _GSK,
    "#ttl": _TTL,
    "#kpk": _KPK,
    "#exp": "exp",
    "#st": "status",
    "#ls": "lease",
    "#at": "attempts",
    "#dl": "delivered_at",
    "#ac": "active",
    "#tok": "lease_token",
    "#av": "available_at",
    "#err": "last_error",
}


@functools.cache
def _names(*expressions: str) -> dict[str, str]:
    """ExpressionAttributeNames for exactly the placeholders used (DynamoDB rejects extras)."""
    used = {name for expression in expressions for name in re.findall(r"#\w+", expression)}
    return {name: _ATTRIBUTES[name] for name in sorted(used)}


class _Op:
    """A precomputed expression set for one kind of request."""

    def __init__(self, *, condition: str, update: str = "") -> None:
        self.condition = condition
        self.update = update
        self.names = _names(condition, update)


_CREATE = _Op(condition="attribute_not_exists(#pk)")
_CREATE_SECRET = _Op(condition="attribute_not_exists(#kpk)")
_CREATE_RECORD = _Op(condition="attribute_not_exists(#pk) OR #exp <= :now")
_LIVE = "attribute_exists(#pk) AND #exp > :now"
_DELETE = _Op(condition=_LIVE)
_ACK = _Op(
    condition=f"{_LIVE} AND #st <> :delivered",
    update="SET #st = :delivered, #gpk = :gpk, #dl = :now, #exp = :exp, #ttl = :ttl,"
    " #ls = :zero, #av = :zero REMOVE #tok",
)
_CLAIMABLE = "#st = :undelivered AND #ls <= :now AND #av <= :now"
_LEASE = _Op(
    condition=f"{_LIVE} AND {_CLAIMABLE} AND #at < :max",
    update="SET #ls = :until, #at = #at + :one, #tok = :tok, #av = :zero",
)
_KILL = _Op(
    condition=f"{_LIVE} AND {_CLAIMABLE} AND #at >= :max",
    update="SET #st = :dead, #gpk = :gpk REMOVE #tok",
)
_HOLDER = f"{_LIVE} AND #st = :undelivered AND #tok = :tok"  # the lease named by :tok is current
_RELEASE = _Op(condition=_HOLDER, update="SET #ls = :zero, #av = :av REMOVE #tok")
_RELEASE_WITH_ERROR = _Op(
    condition=_HOLDER, update="SET #ls = :zero, #av = :av, #err = :err REMOVE #tok"
)
_EXTEND = _Op(condition=_HOLDER, update="SET #ls = :until")
_REDRIVE = _Op(
    condition=f"{_LIVE} AND #st = :dead",
    update="SET #st = :undelivered, #gpk = :gpk, #at = :zero, #ls = :zero, #av = :zero",
)
_REVOKE = _Op(condition="attribute_exists(#kpk)", update="SET #ac = :false")
_UNEXPIRED = "#exp > :now"

_UNDELIVERED: dict[str, str] = {"S": "undelivered"}
_DELIVERED: dict[str, str] = {"S": "delivered"}
_DEAD: dict[str, str] = {"S": "dead"}
_ZERO: dict[str, str] = {"N": "0"}
_STATUSES: dict[str, Status] = {
    "undelivered": "undelivered",
    "delivered": "delivered",
    "dead": "dead",
}

_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
        "TransactionInProgressException",
        "TransactionConflictException",
        "TransactionCanceledException",  # when not handled where it is raised: a conflict
    }
)
_MAX_TRANSACTION = 100
_TRANSACTION_ATTEMPTS = 4
_CLAIM_SLACK = 20  # extra candidates per page, for events other workers lease meanwhile
_SECRET_KEY = {_KPK: {"S": "SECRET#cursor"}, _KSK: {"S": "S"}}
_PING_KEY = {_KPK: {"S": "PING#never-written"}, _KSK: {"S": "P"}}


def _unavailable_on_failure(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Throttles, server faults, a missing table and transport failures become
    `StoreUnavailable` (HTTP 503); anything else is a bug and propagates unchanged."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _UNAVAILABLE_CODES:
                raise StoreUnavailable("DynamoDB is unavailable") from error
            raise
        except (BotocoreConnectionError, HTTPClientError) as error:
            raise StoreUnavailable("DynamoDB could not be reached") from error

    return translated


class DynamoStore(Store):
    def __init__(
        self,
        *,
        events_table: str,
        keys_table: str,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self._events = events_table
        self._keys = keys_table
        self._endpoint_url = endpoint_url
        self._region = region
        self._stack: AsyncExitStack | None = None
        self._client: DynamoDBClient | None = None
        self._secret: bytes | None = None

    async def start(self) -> None:
        stack = AsyncExitStack()
        session = aioboto3.Session()
        self._client = await stack.enter_async_context(
            session.client(
                "dynamodb",
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                config=_client_config(),
            )
        )
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def _db(self) -> DynamoDBClient:
        if self._client is None:
            raise RuntimeError("DynamoStore used before start()")
        return self._client

    @_unavailable_on_failure
    async def create_tables(self) -> None:
        """Create both tables and enable TTL, unless that is done already."""
        for name, table in ((self._events, schema.EVENTS), (self._keys, schema.API_KEYS)):
            request = cast("CreateTableInputTypeDef", table.create_table_request(name))
            with suppress(self._db.exceptions.ResourceInUseException):
                await self._db.create_table(**request)
            waiter = self._db.get_waiter("table_exists")
            await waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            if table.ttl_attribute is not None:
                await self._enable_ttl(name, table.ttl_attribute)

    async def _enable_ttl(self, table: str, attribute: str) -> None:
        described = await self._db.describe_time_to_live(TableName=table)
        if described["TimeToLiveDescription"].get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        try:
            await self._db.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
            )
        except ClientError as error:
            # Another process enabled it between our describe and update.
            if "already enabled" not in str(error):
                raise

    @_unavailable_on_failure
    async def ping(self) -> None:
        await self._db.get_item(TableName=self._keys, Key=_PING_KEY)

    # -- events -------------------------------------------------------------------------------

    @_unavailable_on_failure
    async def insert_events(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> IdempotencyRecord | None:
        if idempotency is None and len(events) == 1:
            await self._create_event(_tenant_pk(tenant), events[0])
            return None
        if len(events) + 1 > _MAX_TRANSACTION:
            raise ValueError(f"at most {_MAX_TRANSACTION - 1} events per insert")
        return await self._create_atomically(tenant, events, idempotency, now)

    async def _create_event(self, pk: str, event: NewEvent) -> None:
        try:
            await self._db.put_item(
                TableName=self._events,
                Item=_event_item(pk, event),
                ConditionExpression=_CREATE.condition,
                ExpressionAttributeNames=_CREATE.names,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            _require_own(_old_item(error.response), event)

    async def _create_atomically(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        record: IdempotencyRecord | None,
        now: int,
    ) -> IdempotencyRecord | None:
        pk = _tenant_pk(tenant)
        actions: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._events,
                    "Item": _event_item(pk, event),
                    "ConditionExpression": _CREATE.condition,
                    "ExpressionAttributeNames": _CREATE.names,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for event in events
        ]
        if record is not None:
            actions.append(
                {
                    "Put": {
                        "TableName": self._events,
                        "Item": _record_item(tenant, record),
                        "ConditionExpression": _CREATE_RECORD.condition,
                        "ExpressionAttributeNames": _CREATE_RECORD.names,
                        "ExpressionAttributeValues": {":now": _number(now)},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                await self._db.transact_write_items(
                    TransactItems=actions, ClientRequestToken=_request_token(events, attempt)
                )
                return None
            except self._db.exceptions.TransactionCanceledException as error:
                reasons: list[dict[str, Any]] = cast(
                    "list[dict[str, Any]]", error.response.get("CancellationReasons", [])
                )
            outcome = _cancellation_outcome(events, record, reasons)
            if not isinstance(outcome, _Retry):
                return outcome
            await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise StoreUnavailable("DynamoDB kept cancelling the write; try again")

    @_unavailable_on_failure
    async def get_event(self, tenant: str, event_id: str, *, now: int) -> Event | None:
        response = await self._db.get_item(
            TableName=self._events, Key=_event_key(tenant, event_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _event(item, now) if item is not None and _live(item, now) else None

    @_unavailable_on_failure
    async def list_events(
        self, tenant: str, *, status: Status | None, limit: int, after: str | None, now: int
    ) -> tuple[list[Event], bool]:
        pk = _tenant_pk(tenant)
        values: dict[str, dict[str, str]] = {":now": _number(now)}
        request: QueryInputTypeDef = {
            "TableName": self._events,
            "FilterExpression": _UNEXPIRED,
            "ExpressionAttributeValues": values,
            "Limit": limit + 1,
        }
        skip = ""  # a base-table BETWEEN includes the cursor's own item
        if status is None:
            values[":pk"] = {"S": pk}
            values[":lo"] = {"S": "E#"}
            if after is None:
                condition = "#pk = :pk AND begins_with(#sk, :lo)"
            else:
                skip = "E#" + after
                values[":hi"] = {"S": skip}
                condition = "#pk = :pk AND #sk BETWEEN :lo AND :hi"
            request["ScanIndexForward"] = False
            # The base table can read its own writes; an index (below) cannot.
            request["ConsistentRead"] = True
        else:
            values[":gpk"] = {"S": f"{pk}#{status}"}
            condition = "#gpk = :gpk"
            if after is not None:
                values[":after"] = {"S": after}
                condition += " AND #gsk > :after"
            request["IndexName"] = _STATUS_INDEX.name
        request["KeyConditionExpression"] = condition
        request["ExpressionAttributeNames"] = _names(condition, _UNEXPIRED)

        found: list[Event] = []
        async with aclosing(self._query(request)) as items:
            async for item in items:
                if item[_SK]["S"] != skip:
                    found.append(_event(item, now))
                    if len(found) > limit:
                        break
        return found[:limit], len(found) > limit

    async def _query(self, request: QueryInputTypeDef) -> AsyncGenerator[Item, None]:
        """Every item the query matches, page after page."""
        while True:
            page = await self._db.query(**request)
            for item in page["Items"]:
                yield item
            last = page.get("LastEvaluatedKey")
            if last is None:
                return
            request["ExclusiveStartKey"] = last

    @_unavailable_on_failure
    async def ack_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int, expires_at: int
    ) -> set[str]:
        values = {
            ":now": _number(now),
            ":delivered": _DELIVERED,
            ":gpk": {"S": f"{_tenant_pk(tenant)}#delivered"},
            ":exp": _number(expires_at),
            ":ttl": _number(_seconds(expires_at)),
            ":zero": _ZERO,
        }
        unique = list(dict.fromkeys(event_ids))
        outcomes = await _all(
            self._update_event(tenant, event_id, _ACK, values, "NONE") for event_id in unique
        )
        # A failed condition on an event delivered already still counts: ack is idempotent.
        return {
            event_id
            for event_id, (applied, item) in zip(unique, outcomes, strict=True)
            if applied or _delivered(item, now)
        }

    async def _update_event(
        self,
        tenant: str,
        event_id: str,
        op: _Op,
        values: Mapping[str, Mapping[str, str]],
        returns: ReturnValueType,
    ) -> tuple[bool, Item | None]:
        """One conditional update: (True, the item as `returns` asks) when it applied, else
        (False, the item its condition failed on, or None when there is none)."""
        try:
            response = await self._db.update_item(
                TableName=self._events,
                Key=_event_key(tenant, event_id),
                UpdateExpression=op.update,
                ConditionExpression=op.condition,
                ExpressionAttributeNames=op.names,
                ExpressionAttributeValues=values,
                ReturnValues=returns,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            return False, _old_item(error.response)
        return True, response.get("Attributes")

    @_unavailable_on_failure
    async def delete_event(self, tenant: str, event_id: str, *, now: int) -> bool:
        try:
            await self._db.delete_item(
                TableName=self._events,
                Key=_event_key(tenant, event_id),
                ConditionExpression=_DELETE.condition,
                ExpressionAttributeNames=_DELETE.names,
                ExpressionAttributeValues={":now": _number(now)},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @_unavailable_on_failure
    async def claim_events(
        self, tenant: str, *, limit: int, lease_until: int, max_attempts: int, now: int
    ) -> Claim:
        request: QueryInputTypeDef = {
            "TableName": self._events,
            "IndexName": _STATUS_INDEX.name,
            "KeyConditionExpression": "#gpk = :gpk",
            "FilterExpression": f"{_CLAIMABLE} AND {_UNEXPIRED}",
            "ExpressionAttributeNames": _names("#gpk", _CLAIMABLE, _UNEXPIRED),
            "ExpressionAttributeValues": {
                ":gpk": {"S": f"{_tenant_pk(tenant)}#undelivered"},
                ":undelivered": _UNDELIVERED,
                ":now": _number(now),
            },
            "Limit": limit + _CLAIM_SLACK,
        }
        claim = Claim([], [])
        batch: list[Item] = []
        # The index lags the table, so each candidate is re-checked by its conditional update.
        async with aclosing(self._query(request)) as candidates:
            async for item in candidates:
                batch.append(item)
                if len(batch) < limit - len(claim.leased):
                    continue
                await self._claim_all(tenant, batch, claim, lease_until, max_attempts, now)
                batch = []
                if len(claim.leased) == limit:
                    break
        await self._claim_all(tenant, batch, claim, lease_until, max_attempts, now)
        claim.leased.sort(key=lambda event: event.id)
        return claim

    async def _claim_all(
        self,
        tenant: str,
        candidates: Sequence[Item],
        claim: Claim,
        lease_until: int,
        max_attempts: int,
        now: int,
    ) -> None:
        """Lease each candidate, or make it dead when it has had its attempts; add what
        happened to `claim`. A candidate someone else changed meanwhile is left alone."""
        base = {
            ":now": _number(now),
            ":undelivered": _UNDELIVERED,
            ":max": _number(max_attempts),
        }
        lease = {**base, ":until": _number(lease_until), ":one": {"N": "1"}, ":zero": _ZERO}
        kill = {**base, ":dead": _DEAD, ":gpk": {"S": f"{_tenant_pk(tenant)}#dead"}}

        async def one(item: Item) -> None:
            event_id = item[_GSK]["S"]
            if int(item["attempts"]["N"]) >= max_attempts:
                applied, _ = await self._update_event(tenant, event_id, _KILL, kill, "NONE")
                if applied:
                    claim.dead.append(event_id)
                return
            token = new_lease_token()
            values = {**lease, ":tok": {"S": token}}
            applied, new = await self._update_event(tenant, event_id, _LEASE, values, "ALL_NEW")
            if applied and new is not None:
                claim.leased.append(_event(new, now, token))

        await _all(one(item) for item in candidates)

    @_unavailable_on_failure
    async def release_event(
        self,
        tenant: str,
        event_id: str,
        *,
        token: str,
        available_at: int,
        error: str | None,
        now: int,
    ) -> ReleaseOutcome:
        values = {
            ":now": _number(now),
            ":undelivered": _UNDELIVERED,
            ":tok": {"S": token},
            ":zero": _ZERO,
            ":av": _number(available_at),
        }
        op = _RELEASE
        if error is not None:
            op, values[":err"] = _RELEASE_WITH_ERROR, {"S": error}
        applied, item = await self._update_event(tenant, event_id, op, values, "NONE")
        return "released" if applied else _refusal(item, now)

    @_unavailable_on_failure
    async def extend_lease(
        self, tenant: str, event_id: str, *, token: str, lease_until: int, now: int
    ) -> ExtendOutcome:
        values = {
            ":now": _number(now),
            ":undelivered": _UNDELIVERED,
            ":tok": {"S": token},
            ":until": _number(lease_until),
        }
        applied, item = await self._update_event(tenant, event_id, _EXTEND, values, "NONE")
        return "extended" if applied else _refusal(item, now)

    @_unavailable_on_failure
    async def redrive_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int
    ) -> dict[str, RedriveOutcome]:
        values = {
            ":now": _number(now),
            ":dead": _DEAD,
            ":undelivered": _UNDELIVERED,
            ":gpk": {"S": f"{_tenant_pk(tenant)}#undelivered"},
            ":zero": _ZERO,
        }
        unique = list(dict.fromkeys(event_ids))
        results = await _all(
            self._update_event(tenant, event_id, _REDRIVE, values, "NONE") for event_id in unique
        )
        outcomes: dict[str, RedriveOutcome] = {}
        for event_id, (applied, item) in zip(unique, results, strict=True):
            refusal = "redriven" if applied else _refusal(item, now)
            # Not dead but undelivered (the condition's other way to fail): nothing to do.
            outcomes[event_id] = "redriven" if refusal == "lease_lost" else refusal
        return outcomes

    # -- API keys -----------------------------------------------------------------------------

    @_unavailable_on_failure
    async def put_api_key(self, key: ApiKey) -> None:
        attributes: dict[str, dict[str, Any]] = {
            "tenant": {"S": key.tenant},
            "active": {"BOOL": key.active},
            "created_at": _number(key.created_at),
        }
        await self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._keys,
                        "Item": {**_lookup_key(key.key_hash), **attributes},
                    }
                },
                {
                    "Put": {
                        "TableName": self._keys,
                        "Item": {**_listing_key(key.key_hash), **attributes},
                    }
                },
            ]
        )

    @_unavailable_on_failure
    async def get_api_key(self, key_hash: str) -> ApiKey | None:
        response = await self._db.get_item(
            TableName=self._keys, Key=_lookup_key(key_hash), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _api_key(key_hash, item)

    @_unavailable_on_failure
    async def list_api_keys(self) -> list[ApiKey]:
        request: QueryInputTypeDef = {
            "TableName": self._keys,
            "KeyConditionExpression": "#kpk = :kpk",
            "ExpressionAttributeNames": _names("#kpk"),
            "ExpressionAttributeValues": {":kpk": {"S": "KEYS"}},
            "ConsistentRead": True,
        }
        return [_api_key(item[_KSK]["S"], item) async for item in self._query(request)]

    @_unavailable_on_failure
    async def revoke_api_key(self, key_hash: str) -> bool:
        def revoke(key: dict[str, dict[str, str]]) -> TransactWriteItemTypeDef:
            return {
                "Update": {
                    "TableName": self._keys,
                    "Key": key,
                    "UpdateExpression": _REVOKE.update,
                    "ConditionExpression": _REVOKE.condition,
                    "ExpressionAttributeNames": _REVOKE.names,
                    "ExpressionAttributeValues": {":false": {"BOOL": False}},
                }
            }

        try:
            await self._db.transact_write_items(
                TransactItems=[revoke(_lookup_key(key_hash)), revoke(_listing_key(key_hash))]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            codes = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
            if "ConditionalCheckFailed" in codes:
                return False
            raise
        return True

    @_unavailable_on_failure
    async def shared_secret(self) -> bytes:
        if self._secret is None:
            # Made already (by this or another process)? Then the read below returns that one.
            with suppress(self._db.exceptions.ConditionalCheckFailedException):
                await self._db.put_item(
                    TableName=self._keys,
                    Item={**_SECRET_KEY, "value": {"B": secrets.token_bytes(32)}},
                    ConditionExpression=_CREATE_SECRET.condition,
                    ExpressionAttributeNames=_CREATE_SECRET.names,
                )
            response = await self._db.get_item(
                TableName=self._keys, Key=_SECRET_KEY, ConsistentRead=True
            )
            self._secret = response["Item"]["value"]["B"]
        return self._secret


# -- items ------------------------------------------------------------------------------------


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _seconds(ms: int) -> int:
    """TTL is in whole seconds; rounding up never deletes an item before `exp`."""
    return -(-ms // 1000)


def _tenant_pk(tenant: str) -> str:
    return "T#" + tenant


def _event_key(tenant: str, event_id: str) -> dict[str, dict[str, str]]:
    return {_PK: {"S": _tenant_pk(tenant)}, _SK: {"S": "E#" + event_id}}


def _event_item(pk: str, event: NewEvent) -> dict[str, dict[str, str]]:
    return {
        _PK: {"S": pk},
        _SK: {"S": "E#" + event.id},
        _GPK: {"S": pk + "#undelivered"},
        _GSK: {"S": event.id},
        "payload": {"S": event.payload.decode()},
        "created_at": {"N": str(event.created_at)},
        "status": _UNDELIVERED,
        "attempts": _ZERO,
        "lease": _ZERO,
        "available_at": _ZERO,
        "exp": {"N": str(event.expires_at)},
        _TTL: {"N": str(_seconds(event.expires_at))},
    }


def _event(item: Item, now: int, token: str | None = None) -> Event:
    lease = int(item["lease"]["N"])
    available_at = int(item["available_at"]["N"])
    status = _STATUSES[item["status"]["S"]]
    delivered_at = item.get("delivered_at")
    last_error = item.get("last_error")
    undelivered = status == "undelivered"
    return Event(
        id=item[_GSK]["S"],
        created_at=int(item["created_at"]["N"]),
        status=status,
        payload=item["payload"]["S"].encode(),
        delivered_at=None if delivered_at is None else int(delivered_at["N"]),
        attempts=int(item["attempts"]["N"]),
        lease_expires_at=lease if lease > now and undelivered else None,
        available_at=available_at if available_at > now and undelivered else None,
        last_error=None if last_error is None else last_error["S"],
        lease_token=token,
    )


def _refusal(item: Item | None, now: int) -> Refusal:
    """Why a conditional update did not apply, from the item its condition failed on."""
    if item is None or not _live(item, now):
        return "not_found"
    return "already_delivered" if item["status"]["S"] == "delivered" else "lease_lost"


def _live(item: Item, now: int) -> bool:
    return int(item["exp"]["N"]) > now


def _delivered(item: Item | None, now: int) -> bool:
    return item is not None and _live(item, now) and item["status"]["S"] == "delivered"


def _old_item(response: Mapping[str, Any]) -> Item | None:
    """The item a failed condition was checked against (ReturnValuesOnConditionCheckFailure)."""
    return cast("Item | None", response.get("Item"))


def _require_own(item: Item | None, event: NewEvent) -> None:
    """A create that fails against the item its own earlier attempt wrote (botocore retried a
    write whose response was lost) succeeded; any other item under that id is a duplicate."""
    own = (
        item is not None
        and item.get("payload") == {"S": event.payload.decode()}
        and item.get("created_at") == {"N": str(event.created_at)}
    )
    if not own:
        raise DuplicateEventId(event.id)


def _record_key(tenant: str, key: str) -> str:
    return f"I#{tenant}#{hashlib.sha256(key.encode()).hexdigest()}"


def _record_item(tenant: str, record: IdempotencyRecord) -> dict[str, dict[str, Any]]:
    item: dict[str, dict[str, Any]] = {
        _PK: {"S": _record_key(tenant, record.key)},
        _SK: {"S": "I"},
        "key": {"S": record.key},
        "body_hash": {"S": record.body_hash},
        "http_status": _number(record.status),
        "response": {"B": record.response},
        "exp": _number(record.expires_at),
        _TTL: _number(_seconds(record.expires_at)),
    }
    if record.location is not None:
        item["location"] = {"S": record.location}
    return item


def _record(item: Item) -> IdempotencyRecord:
    location = item.get("location")
    return IdempotencyRecord(
        key=item["key"]["S"],
        body_hash=item["body_hash"]["S"],
        status=int(item["http_status"]["N"]),
        response=item["response"]["B"],
        expires_at=int(item["exp"]["N"]),
        location=None if location is None else location["S"],
    )


def _request_token(events: Sequence[NewEvent], attempt: int) -> str:
    """Same transaction, same token: DynamoDB then applies a write botocore retries only once.
    Our own retries of a cancelled transaction get a fresh one."""
    ids = "|".join(event.id for event in events)
    return hashlib.sha256(f"{ids}#{attempt}".encode()).hexdigest()[:36]


class _Retry(enum.Enum):
    TRANSACTION = "retry"


def _cancellation_outcome(
    events: Sequence[NewEvent],
    record: IdempotencyRecord | None,
    reasons: Sequence[Mapping[str, Any]],
) -> IdempotencyRecord | _Retry | None:
    """What a cancelled insert means: a record already held (returned), a duplicate id (raised),
    our own earlier attempt having committed (None), or a transient conflict (retry)."""
    codes = [reason.get("Code") for reason in reasons]
    if record is not None and codes[len(events) :] == ["ConditionalCheckFailed"]:
        held = reasons[len(events)].get("Item")
        if held is None:
            return _Retry.TRANSACTION  # no copy of what failed the check: look again
        # Even our own record from a retried write: the caller replays its response then.
        return _record(held)
    conflicts = [
        (event, reason.get("Item"))
        for event, reason in zip(events, reasons, strict=False)
        if reason.get("Code") == "ConditionalCheckFailed"
    ]
    for event, item in conflicts:
        _require_own(item, event)
    if conflicts:
        return None
    if "TransactionConflict" in codes:
        return _Retry.TRANSACTION
    raise StoreUnavailable("DynamoDB cancelled the write; try again")


def _lookup_key(key_hash: str) -> dict[str, dict[str, str]]:
    """The item `get_api_key` reads; `_listing_key` names its copy for `list_api_keys`."""
    return {_KPK: {"S": "K#" + key_hash}, _KSK: {"S": "K"}}


def _listing_key(key_hash: str) -> dict[str, dict[str, str]]:
    return {_KPK: {"S": "KEYS"}, _KSK: {"S": key_hash}}


def _api_key(key_hash: str, item: Item) -> ApiKey:
    return ApiKey(
        key_hash=key_hash,
        tenant=item["tenant"]["S"],
        active=item["active"]["BOOL"],
        created_at=int(item["created_at"]["N"]),
    )


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently; unlike a bare gather, wait for every call before raising the first
    failure, so nothing is left running unobserved."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast("list[T]", results)
