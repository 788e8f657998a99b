"""API keys as a producer meets them: revocation takes effect within the cache lifetime."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.auth import generate_key, hash_key, key_id, mint_key
from service.settings import Settings
from service.store.base import ApiKey
from service.store.sqlite import SqliteStore
from tests.conftest import assert_problem, bearer, running_api


def test_keys_carry_256_random_bits_and_are_stored_hashed() -> None:
    keys = {generate_key() for _ in range(100)}

    assert len(keys) == 100
    assert all(k.startswith("tk_") and len(k) == 3 + 43 for k in keys)
    key = keys.pop()
    assert hash_key(key) != key
    assert len(hash_key(key)) == 64
    assert key_id(hash_key(key)) == hash_key(key)[:12]


async def test_a_minted_key_is_active_and_stored_only_as_its_hash(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "keys.db")) as store:
        key = await mint_key(store, "acme", now=1_700_000_000_000)

        assert await store.list_api_keys() == [
            ApiKey(hash_key(key), "acme", True, 1_700_000_000_000)
        ]


async def test_a_revoked_key_gets_401_once_the_cache_lapses(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "auth.db"), api_key_cache_seconds=0.2)
    async with running_api(settings) as (client, ctx, _):
        key = await mint_key(ctx.store, "acme")
        assert (await client.get("/v1/events", headers=bearer(key))).status_code == 200

        await ctx.store.revoke_api_key(hash_key(key))
        await asyncio.sleep(0.25)

        assert_problem(await client.get("/v1/events", headers=bearer(key)), 401, "unauthorized")
