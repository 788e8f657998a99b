"""What `trigger-api` checks before it serves or runs a command, and how it says what is wrong:
one line that names the setting or path — exit status 2 for a misconfiguration, 1 for a store
that failed.

`serve` exits only on what it can tell without the store's help (a bad setting, a port in use, no
AWS region or credentials, a SQLite file it cannot open); whether the store answers, it reports
and keeps serving, since a store that is down now may be up in a moment (/ready says which).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.settings import Settings
from service.store import open_store
from service.store.base import Store, StoreError

log = logging.getLogger("trigger_api")

DB_SETTING = "--db or TRIGGER_DB"
TABLE_SETTINGS = "--events-table/TRIGGER_EVENTS_TABLE, --keys-table/TRIGGER_KEYS_TABLE"
NO_CREDENTIALS = (
    "no AWS credentials for DynamoDB: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    " (any values do for DynamoDB Local), or AWS_PROFILE"
)
NO_REGION = "no AWS region for DynamoDB: set AWS_DEFAULT_REGION (or AWS_REGION)"


class ConfigError(Exception):
    """A misconfiguration, said in one line that names the setting or path: exit status 2."""


def listen(settings: Settings) -> socket.socket:
    """The service's socket, bound before anything else is done: a port in use costs nothing."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port} (--host/TRIGGER_HOST,"
            f" --port/TRIGGER_PORT): {error.strerror or error}"
        ) from None
    return sock


def location(settings: Settings) -> str:
    """Where the store is, as a person would look for it."""
    if settings.store == "sqlite":
        return f"the SQLite file {os.path.abspath(settings.db)}"
    endpoint = settings.dynamodb_endpoint or f"https://dynamodb.{settings.region}.amazonaws.com"
    return f"DynamoDB at {endpoint}"


@asynccontextmanager
async def opened(settings: Settings, *, create: bool) -> AsyncIterator[Store]:
    """The configured store, started. Without `create`, a SQLite file must already exist."""
    await asyncio.to_thread(_check, settings, create)
    store = open_store(settings)
    try:
        await store.start()
    except (sqlite3.Error, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(
            f"cannot open the SQLite store {settings.db} ({DB_SETTING}): {reason}"
        ) from None
    except StoreError as error:  # a file the store refuses (another version's data)
        if settings.store != "sqlite":
            raise
        raise ConfigError(f"{error} ({DB_SETTING})") from None
    try:
        yield store
    finally:
        await store.close()


def _check(settings: Settings, create: bool) -> None:
    if settings.store == "sqlite" and not create and not os.path.exists(settings.db):
        raise ConfigError(
            f"no SQLite store at {settings.db} ({DB_SETTING}); `trigger-api serve` or"
            " `trigger-api seed` creates one"
        )
    if settings.store == "dynamodb":
        check_aws(settings)


def check_aws(settings: Settings) -> None:
    """A region and credentials, found the way the AWS SDK finds them (files and roles too)."""
    import botocore.session

    session = botocore.session.get_session()
    if settings.region is None and session.get_config_variable("region") is None:
        raise ConfigError(NO_REGION)
    if session.get_credentials() is None:
        raise ConfigError(NO_CREDENTIALS)


async def report(store: Store, settings: Settings) -> None:
    """Say whether the store answers; serving goes on either way."""
    try:
        await store.ping()
    except StoreError as error:
        _, reason = explain_store_error(error, settings)
        log.warning("store: %s; serving anyway, /ready answers 503 until it answers", reason)
    else:
        log.info("store: %s answered", location(settings))


def explain(error: BaseException, settings: Settings | None) -> tuple[int, str] | None:
    """Exit status and one line for an error a person can act on; None for a bug."""
    if isinstance(error, ConfigError):
        return 2, str(error)
    if settings is None:
        return None
    if isinstance(error, StoreError):
        return explain_store_error(error, settings)
    if "botocore" in sys.modules:
        from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return 2, NO_CREDENTIALS
        if isinstance(error, NoRegionError):
            return 2, NO_REGION
    return None


def explain_store_error(error: StoreError, settings: Settings) -> tuple[int, str]:
    where = location(settings)
    cause = error.__cause__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code")
    if code == "ResourceNotFoundException":
        return 2, (
            f"{where} has no table {settings.events_table} or {settings.keys_table}"
            f" ({TABLE_SETTINGS}); create them with `trigger-api tables create`"
        )
    if settings.store == "dynamodb":
        from botocore.exceptions import ConnectionError, HTTPClientError

        if isinstance(cause, ConnectionError | HTTPClientError):
            setting = " (AWS_ENDPOINT_URL_DYNAMODB)" if settings.dynamodb_endpoint else ""
            return 1, f"{where}{setting} could not be reached"
    return 1, f"{where} failed: {error}"
