"""What every part of the DynamoDB adapter shares: the client's settings, how failures become
`StoreUnavailable`, expression building, and running calls side by side."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from service.store.base import StoreUnavailable

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import QueryInputTypeDef

P = ParamSpec("P")
T = TypeVar("T")
Item = Mapping[str, Any]

UNAVAILABLE_CODES = frozenset(
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


def client_config() -> AioConfig:
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


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def unavailable_on_failure(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Throttles, server faults, a missing table and transport failures become
    `StoreUnavailable` (HTTP 503); anything else is a bug and propagates unchanged."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ClientError as error:
            if error_code(error) in UNAVAILABLE_CODES:
                raise StoreUnavailable("DynamoDB is unavailable") from error
            raise
        except (BotocoreConnectionError, HTTPClientError) as error:
            raise StoreUnavailable("DynamoDB could not be reached") from error

    return translated


class Names:
    """ExpressionAttributeNames for exactly the `#placeholders` an expression uses (DynamoDB
    rejects extras): `#x` names attribute `x`, or what `aliases` maps it to."""

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self._aliases = dict(aliases or {})

    @functools.cache  # noqa: B019 - a handful of instances, living as long as the process
    def of(self, *expressions: str) -> dict[str, str]:
        used = {name for expression in expressions for name in re.findall(r"#\w+", expression)}
        return {name: self._aliases.get(name, name[1:]) for name in sorted(used)}


class Op:
    """A precomputed condition and update for one kind of write."""

    def __init__(self, names: Names, *, condition: str, update: str = "") -> None:
        self.condition = condition
        self.update = update
        self.names = names.of(condition, update)


async def query_all(db: DynamoDBClient, request: QueryInputTypeDef) -> AsyncIterator[Item]:
    """Every item a query matches, page after page."""
    while True:
        page = await db.query(**request)
        for item in page["Items"]:
            yield item
        last = page.get("LastEvaluatedKey")
        if last is None:
            return
        request["ExclusiveStartKey"] = last


# Calls one request runs at once: a 100-id ack takes at most a quarter of the client's 64
# pooled connections, and no call waits behind 99 others long enough to time out.
CALLS_AT_ONCE = 16


async def run_all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently, `CALLS_AT_ONCE` at a time; unlike a bare gather, wait for every call
    before raising the first failure, so nothing is left running unobserved."""
    gate = asyncio.Semaphore(CALLS_AT_ONCE)

    async def gated(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    results = await asyncio.gather(*(gated(call) for call in calls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast("list[T]", results)
