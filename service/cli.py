"""`trigger-api`: serve, seed, keys create/revoke/list, tables create.

Configuration: flags, then environment variables, then defaults (`service/settings.py`). Output
meant for scripts goes to stdout; everything else to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from service import logfmt
from service.auth import hash_key, key_id, mint_key
from service.settings import Settings, SettingsError, load_settings
from service.startup import ConfigError, check_aws, explain, listen, opened, report
from service.store.base import Store
from service.typed_settings import add_flags

if TYPE_CHECKING:
    from service.app import App

DEMO_TENANTS = ("acme", "globex", "initech")
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# The settings offered as flags: the store's on every command, the address on `serve`.
STORE_FLAGS = ("store", "db", "events_table", "keys_table")
SERVE_FLAGS = ("host", "port", "metrics_port", "access_log")
# uvicorn's exit status when the application fails to start.
STARTUP_FAILURE = 3
# How long `serve` lets in-flight requests finish on SIGTERM; whatever stops the process (compose,
# ECS) must wait longer than this before its SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 25
# Container allocations (net of frees) that start a young-generation collection while serving;
# Python's default is 700. See `collect_less`.
YOUNG_COLLECTION_THRESHOLD = 10_000

log = logging.getLogger("trigger_api")


class CommandError(Exception):
    """A one-line message for stderr and exit status 1."""


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    flags = {name: getattr(args, name, None) for name in STORE_FLAGS + SERVE_FLAGS}
    settings: Settings | None = None
    try:
        settings = load_settings(flags)
        args.command(settings, args)
    except SettingsError as error:
        _fail(2, f"invalid setting: {error}")
    except CommandError as error:
        _fail(1, str(error))
    except Exception as error:
        explained = explain(error, settings)
        if explained is None:
            raise
        _fail(*explained)


def _fail(status: int, line: str) -> None:
    print(f"trigger-api: {line}", file=sys.stderr)
    raise SystemExit(status) from None


def _parser() -> argparse.ArgumentParser:
    store_options = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_flags(store_options, Settings, STORE_FLAGS)

    parser = argparse.ArgumentParser(
        prog="trigger-api", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    commands = parser.add_subparsers(required=True, metavar="command")

    serve_parser = commands.add_parser("serve", parents=[store_options], help="run the service")
    add_flags(serve_parser, Settings, SERVE_FLAGS)
    serve_parser.set_defaults(command=serve)

    seed_parser = commands.add_parser(
        "seed", parents=[store_options], help="create the demo tenants, print fresh keys"
    )
    seed_parser.set_defaults(command=_runs(seed, create=True))

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="action"
    )
    create = keys.add_parser("create", parents=[store_options], help="print a new key")
    create.add_argument("--tenant", required=True)
    create.set_defaults(command=_runs(keys_create))
    revoke = keys.add_parser("revoke", parents=[store_options], help="revoke a key")
    revoke.add_argument("key", help="the key, or the id `keys list` shows")
    revoke.set_defaults(command=_runs(keys_revoke))
    listing = keys.add_parser("list", parents=[store_options], help="list keys (never whole)")
    listing.set_defaults(command=_runs(keys_list))

    tables = commands.add_parser("tables", help="DynamoDB tables").add_subparsers(
        required=True, metavar="action"
    )
    tables_create = tables.add_parser(
        "create", parents=[store_options], help="create the tables if missing"
    )
    tables_create.set_defaults(command=create_tables)
    return parser


def _runs(
    command: Callable[[Store, Settings, argparse.Namespace], Awaitable[None]],
    *,
    create: bool = False,
) -> Callable[[Settings, argparse.Namespace], None]:
    """Run an async command with the configured store open around it. Only `create` commands
    make a new SQLite file: elsewhere a mistyped --db would silently open an empty store."""

    def run(settings: Settings, args: argparse.Namespace) -> None:
        async def with_store() -> None:
            async with opened(settings, create=create) as store:
                await command(store, settings, args)

        asyncio.run(with_store())

    return run


# -- commands ---------------------------------------------------------------------------------


def serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from service.app import create_app
    from service.protocol import Limits, Server, limited_protocol

    logfmt.configure()
    # The ports first: if one is taken, nothing is seeded and no demo key is printed to be lost.
    sock = listen(settings)
    app = create_app(settings)
    if settings.metrics_port is not None:
        _serve_metrics(app, settings)
    _runs(_prepare, create=True)(settings, args)
    limits = Limits(settings.header_timeout, settings.body_timeout, settings.max_header_bytes)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=limited_protocol(limits),
        access_log=False,  # the app writes its own, with request ids and tenants
        log_config=None,  # uvicorn's records go to the root logger: logfmt, like ours
        proxy_headers=True,  # the ALB's X-Forwarded-*; trusted from FORWARDED_ALLOW_IPS
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_level="info",
    )
    server = Server(config, on_stopping=app.stop_waiting)
    collect_less()
    # A SIGTERM or SIGINT from here on asks the server to stop, as uvicorn's own handlers do once
    # it runs: it drains in-flight requests, then re-raises the signal to this same handler,
    # which only sets a flag, and the process ends with status 0. A handler that raised instead
    # could land in a callback that swallows exceptions (a weakref's, during a collection), and
    # the signal would be lost.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, server.handle_exit)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def _serve_metrics(app: App, settings: Settings) -> None:
    """Bind the metrics port before anything else starts, or stop with one line."""
    from prometheus_client import disable_created_metrics

    from service.metrics import serve_metrics

    assert settings.metrics_port is not None
    # A `_created` series beside each counter and histogram would only double their number.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        server = serve_metrics(app.metrics.registry, settings.host, settings.metrics_port)
    except OSError as error:
        raise ConfigError(
            f"cannot serve metrics on {settings.host}:{settings.metrics_port}"
            f" (--metrics-port/TRIGGER_METRICS_PORT): {error.strerror or error}"
        ) from None
    url = f"http://{settings.host}:{server.server_port}/metrics"
    log.info("serving metrics", extra={"fields": {"url": url}})


def collect_less() -> None:
    """Spare the cycle collector's passes over objects that are not garbage.

    A request frees what it allocates by reference counting, but at the default threshold the
    young generation fills with what the requests in flight still hold: under 64 connections that
    was ~3,700 collections and ~20 µs of CPU per request, about a sixth of the main thread. With
    10,000 the same load ran one collection in 60,000 requests, and garbage cycles, if any, wait
    for at most that many objects. What start-up made (modules, the app) is frozen out of all
    later passes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)


async def _prepare(store: Store, settings: Settings, args: argparse.Namespace) -> None:
    """Say whether the store answers; seed an empty embedded store."""
    await report(store, settings)
    if settings.store != "sqlite" or await store.list_api_keys():
        return
    print("Empty store: created the demo tenants. Their API keys, shown only this once:")
    await seed(store, settings, args)
    sys.stdout.flush()


async def seed(store: Store, settings: Settings, args: argparse.Namespace) -> None:
    keys = [await mint_key(store, tenant) for tenant in DEMO_TENANTS]
    for tenant, key in zip(DEMO_TENANTS, keys, strict=True):
        print(f"export {tenant.upper()}_API_KEY='{key}'")
    print(f"export API_KEYS='{','.join(keys)}'")
    print(f"export TENANT_NAMES='{','.join(DEMO_TENANTS)}'")


async def keys_create(store: Store, settings: Settings, args: argparse.Namespace) -> None:
    tenant = args.tenant
    if TENANT_NAME.fullmatch(tenant) is None:
        raise CommandError(
            f"invalid tenant name {tenant!r}: use 1-63 of a-z, 0-9, '-', '_' (not first)"
        )
    print(await mint_key(store, tenant))


async def keys_revoke(store: Store, settings: Settings, args: argparse.Namespace) -> None:
    given = args.key.strip()
    matches = [hash_key(given)]
    if re.fullmatch(r"[0-9a-f]{12}", given):
        matches += [k.key_hash for k in await store.list_api_keys() if key_id(k.key_hash) == given]
    for candidate in matches:
        if await store.revoke_api_key(candidate):
            print(f"revoked key {key_id(candidate)}", file=sys.stderr)
            return
    raise CommandError("no such key")


async def keys_list(store: Store, settings: Settings, args: argparse.Namespace) -> None:
    for key in await store.list_api_keys():
        created = datetime.datetime.fromtimestamp(key.created_at / 1000, datetime.UTC)
        state = "active" if key.active else "revoked"
        print(f"{key_id(key.key_hash)}  {key.tenant:<20} {state:<8} {created:%Y-%m-%dT%H:%M:%SZ}")


def create_tables(settings: Settings, args: argparse.Namespace) -> None:
    if settings.store != "dynamodb":
        raise CommandError("tables create needs the DynamoDB store (--store dynamodb)")
    from service.store import tables

    check_aws(settings)
    asyncio.run(
        tables.create_tables(
            settings.events_table,
            settings.keys_table,
            endpoint_url=settings.dynamodb_endpoint,
            region=settings.region,
        )
    )
    print(f"tables ready: {settings.events_table}, {settings.keys_table}", file=sys.stderr)
