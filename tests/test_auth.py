"""API keys as a producer meets them: revocation takes effect within the cache lifetime, and
the cache stays small and cheap whatever tokens arrive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.requests import Request

from service.auth import ENTRY_BYTES, Authenticator, generate_key, hash_key, key_id, mint_key
from service.problems import ApiError
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


class CountingStore(SqliteStore):
    """The embedded store, counting its key lookups and making each one take a while."""

    lookups = 0

    async def get_api_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        await asyncio.sleep(0.02)
        return await super().get_api_key(key_hash)


def with_token(token: str) -> Request:
    return Request({"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]})


async def refused(auth: Authenticator, token: str) -> bool:
    try:
        await auth.tenant_of(with_token(token))
    except ApiError as error:
        return error.status == 401
    return False


@pytest.mark.parametrize(
    "token",
    [
        "tk_" + "a" * 42,  # too short
        "tk_" + "a" * 44,  # too long
        "tx_" + "a" * 43,  # another prefix
        "tk_" + "a" * 42 + "=",  # outside base64url
        "tk_" + "a" * 42 + "é",
        "tk_" + "a" * 32_768,
    ],
)
async def test_a_token_that_cannot_be_a_key_is_refused_without_a_lookup(
    tmp_path: Path, token: str
) -> None:
    async with CountingStore(str(tmp_path / "keys.db")) as store:
        auth = Authenticator(store)

        assert await refused(auth, token)
        assert await refused(auth, token)

        assert store.lookups == 0
        assert auth.cached == (0, 0)


async def test_concurrent_requests_with_a_new_token_cost_one_lookup(tmp_path: Path) -> None:
    async with CountingStore(str(tmp_path / "keys.db")) as store:
        auth = Authenticator(store)
        key = await mint_key(store, "acme")

        unknown = generate_key()

        tenants = await asyncio.gather(*(auth.tenant_of(with_token(key)) for _ in range(50)))
        refusals = await asyncio.gather(*(refused(auth, unknown) for _ in range(50)))

        assert tenants == ["acme"] * 50
        assert all(refusals)
        assert store.lookups == 2


async def test_a_waiter_that_gives_up_does_not_cancel_the_others_lookup(tmp_path: Path) -> None:
    async with CountingStore(str(tmp_path / "keys.db")) as store:
        auth = Authenticator(store)
        key = await mint_key(store, "acme")

        leaving = asyncio.create_task(auth.tenant_of(with_token(key)))
        staying = asyncio.create_task(auth.tenant_of(with_token(key)))
        await asyncio.sleep(0.005)
        leaving.cancel()

        assert await staying == "acme"
        assert store.lookups == 1


async def test_the_cache_is_bounded_and_drops_expired_lookups(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "keys.db")) as store:
        auth = Authenticator(store, ttl=0.2, max_bytes=10 * ENTRY_BYTES)

        for _ in range(30):
            assert await refused(auth, generate_key())
        entries, size = auth.cached
        assert entries == 10
        assert size <= 10 * ENTRY_BYTES

        await asyncio.sleep(0.25)
        assert await refused(auth, generate_key())
        assert auth.cached == (1, ENTRY_BYTES)
