"""A k-way merge of sorted async streams: the DynamoDB adapter's listings merge a tenant's shards
in id order, its claims merge them by when their events became claimable."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence
from typing import Any

from service.store.dynamo_client import run_all


async def merge_sorted(
    streams: Sequence[AsyncIterator[Any]], *, key: Any, reverse: bool = False
) -> AsyncIterator[Any]:
    """A k-way merge of sorted async streams, reading each only as far as needed."""
    heap: list[tuple[Any, int, Any]] = []
    sign = -1 if reverse else 1

    async def pull(index: int) -> None:
        try:
            value = await anext(streams[index])
        except StopAsyncIteration:
            return
        sort_key = key(value)
        heapq.heappush(heap, (_Reversed(sort_key) if sign < 0 else sort_key, index, value))

    await run_all(pull(index) for index in range(len(streams)))
    while heap:
        _, index, value = heapq.heappop(heap)
        yield value
        await pull(index)


class _Reversed:
    """Orders like its value, backwards (for a merge of descending streams)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value
