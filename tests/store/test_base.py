"""What every store inherits from the port: the `async with` lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.store.base import StoreUnavailable
from service.store.sqlite import SqliteStore


async def test_a_store_is_open_inside_async_with_and_closed_after(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "base.db")) as store:
        await store.ping()
        assert await store.list_api_keys() == []

    with pytest.raises(StoreUnavailable, match="not open"):
        await store.ping()


async def test_the_store_closes_when_the_block_raises(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "base.db"))
    with pytest.raises(RuntimeError, match="boom"):
        async with store:
            raise RuntimeError("boom")

    with pytest.raises(StoreUnavailable, match="not open"):
        await store.ping()
