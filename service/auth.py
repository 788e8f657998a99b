"""API keys: made with ≥ 128 random bits, stored only as SHA-256, checked through a short cache.

The cache keeps a lookup for `ttl` seconds (10 by default), so a revoked key gets 401 on every
task within that long, while a busy producer costs the store one read per key per 10 s. It is
keyed by the presented token, so a cache hit costs no hashing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict

from starlette.requests import Request

from service.clock import now_ms
from service.problems import unauthorized
from service.store.base import ApiKey, Store

KEY_PREFIX = "tk_"
TENANT_KEY = "trigger.tenant"  # where `tenant_of` leaves it in the scope, for the access log
MAX_CACHED_KEYS = 10_000


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
    def __init__(self, store: Store, ttl: float = 10.0) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self.hits = 0  # lookups the cache answered; read by the metrics
        self.misses = 0  # lookups that went to the store

    async def tenant_of(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            raise unauthorized("Missing Authorization header; send 'Bearer <api key>'.")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or not token.isascii():
            raise unauthorized("Malformed Authorization header; send 'Bearer <api key>'.")
        key = await self._lookup(token)
        if key is None or not key.active:
            raise unauthorized("Unknown or revoked API key.")
        request.scope[TENANT_KEY] = key.tenant
        return key.tenant

    async def _lookup(self, token: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            self.hits += 1
            return cached[1]
        self.misses += 1
        key = await self._store.get_api_key(hash_key(token))
        self._cache[token] = (now + self._ttl, key)
        self._cache.move_to_end(token)
        if len(self._cache) > MAX_CACHED_KEYS:
            self._cache.popitem(last=False)
        return key
