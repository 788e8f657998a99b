"""API keys: made with ≥ 128 random bits, stored only as SHA-256, checked through a short cache.

The cache keeps a lookup for `ttl` seconds (10 by default), so a revoked key gets 401 on every
task within that long, while a busy producer costs the store one read per key per 10 s. It is
keyed by the presented token, so a cache hit costs no hashing. Only tokens shaped like a key are
looked up or cached, and the cache is bounded in bytes, so a flood of made-up tokens can neither
grow memory nor reach the store more than once per distinct well-formed token per `ttl`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
import time

from cachetools import TTLCache
from starlette.requests import Request

from service.clock import now_ms
from service.problems import unauthorized
from service.store.base import ApiKey, Store

KEY_PREFIX = "tk_"
TENANT_KEY = "trigger.tenant"  # where `tenant_of` leaves it in the scope, for the access log
KEY_SHAPE = re.compile(r"tk_[A-Za-z0-9_-]{43}")  # what generate_key makes, and nothing else
# The cache holds at most 4 MiB, counted as ENTRY_BYTES per entry (the 46-character token, the
# stored key's hash and tenant, and the cache's own links) plus the tenant's name: at most
# 10,485 entries. Expired entries are dropped whenever one is added.
MAX_CACHE_BYTES = 4 * 1024 * 1024
ENTRY_BYTES = 400


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def mint_key(store: Store, tenant: str, *, now: int | None = None) -> str:
    """A new active key for `tenant`. Only its hash is stored: this is the one chance to see it."""
    key = generate_key()
    created_at = now_ms() if now is None else now
    await store.put_api_key(ApiKey(hash_key(key), tenant, True, created_at))
    return key


def key_id(key_hash: str) -> str:
    """What `keys list` shows instead of the key: enough to recognise and revoke it."""
    return key_hash[:12]


class Authenticator:
    """Who a request's bearer token belongs to, through a bounded cache of store lookups."""

    def __init__(self, store: Store, ttl: float = 10.0, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self._store = store
        self._cache: TTLCache[str, ApiKey | None] = TTLCache(
            maxsize=max_bytes, ttl=ttl, timer=time.monotonic, getsizeof=_entry_bytes
        )
        self._pending: dict[str, asyncio.Task[ApiKey | None]] = {}
        self.hits = 0  # lookups the cache answered; read by the metrics
        self.misses = 0  # lookups that went to the store

    @property
    def cached(self) -> tuple[int, int]:
        """How many lookups the cache holds, and their size as it counts them (bytes)."""
        return len(self._cache), int(self._cache.currsize)

    async def tenant_of(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            raise unauthorized("Missing Authorization header; send 'Bearer <api key>'.")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Malformed Authorization header; send 'Bearer <api key>'.")
        key = await self._lookup(token)
        if key is None or not key.active:
            raise unauthorized("Unknown or revoked API key.")
        request.scope[TENANT_KEY] = key.tenant
        return key.tenant

    async def _lookup(self, token: str) -> ApiKey | None:
        """The cached answer, else one store read however many requests wait for it."""
        try:
            key = self._cache[token]  # only well-formed tokens are ever cached
        except KeyError:
            pass
        else:
            self.hits += 1
            return key
        if not KEY_SHAPE.fullmatch(token):  # cannot be a key: no lookup, no cache entry
            return None
        pending = self._pending.get(token)
        if pending is None:
            pending = asyncio.create_task(self._fetch(token))
            self._pending[token] = pending
            pending.add_done_callback(functools.partial(self._settled, token))
        # One waiter giving up (a client that left) must not cancel the others' read.
        return await asyncio.shield(pending)

    async def _fetch(self, token: str) -> ApiKey | None:
        self.misses += 1
        key = await self._store.get_api_key(hash_key(token))
        self._cache[token] = key
        return key

    def _settled(self, token: str, task: asyncio.Task[ApiKey | None]) -> None:
        del self._pending[token]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone


def _entry_bytes(key: ApiKey | None) -> int:
    return ENTRY_BYTES + (0 if key is None else len(key.tenant))
