"""moto's DynamoDB server for the tests and benchmarks, made faithful where it matters to us, and
optionally metered and throttled as DynamoDB meters and throttles.

    python tests/moto_server.py PORT [--meter] [--partition-wcu N]

`python -m moto.server` differs from DynamoDB in ways that tests would notice (see NOTES.md),
and this server fixes each:

- It serves each request on its own thread with no lock around the backend, so two conditional
  updates of one item can both succeed. Here one lock serializes every request: each is atomic,
  as DynamoDB's are.
- werkzeug closes the connection after every response, so each call pays a new TCP connection.
  Here connections are kept alive (HTTP/1.1, `Content-Length` on every answer), as DynamoDB's are.
- `TransactWriteItems` deep-copies the whole table once per item, to roll back on failure: a
  large transaction on a table of a few thousand items takes seconds. Here a transaction keeps a
  copy of only the items it touches.
- moto accepts a `BatchWriteItem` of any number of items; here more than 25 are refused with
  DynamoDB's `ValidationException`.

Two instruments, off unless asked for (without them nothing is counted or slowed):

- `--meter` bills every write as DynamoDB would (write units of the item and of each global
  secondary index entry it changes; rules in docs/DESIGN-NOTES.md, "Write units: how we count
  them") and counts calls, per table, index and partition-key value. `GET /_meter` answers the
  counts as JSON; `POST /_meter/reset` answers them too, and starts again from zero (and with
  full partition buckets).
- `--partition-wcu N` (implies `--meter`) throttles each partition-key value of each table and
  each index at N write units a second, with a burst of N: a write that lacks the units is
  refused entirely, answered as DynamoDB answers (`ProvisionedThroughputExceededException`;
  `ThrottlingError` among a transaction's `CancellationReasons`; `UnprocessedItems` of a batch).

moto is pinned by uv.lock; `transact_write_items` below follows moto 5.1's own implementation
with only the rollback changed. The instruments are in `moto_meter` (the hooks into moto),
`dynamo_meter` (the counts and buckets) and `dynamo_units` (DynamoDB's billing rules).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from dynamo_meter import Buckets, Meter
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto_meter import install, restore

Key = tuple[str, DynamoType, DynamoType | None]


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    before: dict[Key, Item | None] = {}  # each touched item as it was, for a rollback

    def rollback() -> None:
        for (table_name, hash_value, range_value), item in before.items():
            restore(self.tables[table_name], hash_value, range_value, item)

    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for action in transact_items:
        original_item: dict[str, Any] | None = None
        if len(action) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(action.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)

            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (
                DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
            )
            current = self.get_item(table_name, key)
            before.setdefault((table.name, hash_value, range_value), copy.deepcopy(current))
            condition = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if condition is not None and not get_filter_expression(condition, names, values).expr(
                current
            ):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)
            expressions = {
                "condition_expression": condition,
                "expression_attribute_names": names,
                "expression_attribute_values": values,
            }
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **expressions)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **expressions)
            elif op_type == "Update":
                self.update_item(
                    table_name, key, update_expression=op["UpdateExpression"], **expressions
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as error:
            errors.append(("ConditionalCheckFailed", str(error.message), original_item))
        except Exception as error:
            errors.append((type(error).__name__, str(error), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]

_batch_write_item = DynamoHandler.batch_write_item


def _bounded_batch_write_item(self: DynamoHandler) -> Any:
    batches = self.body.get("RequestItems", {})
    if any(len(requests) > 25 for requests in batches.values()):
        raise MockValidationException(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint:"
            " Map value must satisfy constraint: [Member must have length less than or equal"
            " to 25, Member must have length greater than or equal to 1]"
        )
    if sum(len(requests) for requests in batches.values()) > 25:
        raise MockValidationException("Too many items requested for the BatchWriteItem call")
    return _batch_write_item(self)


DynamoHandler.batch_write_item = _bounded_batch_write_item  # type: ignore[method-assign]

APP = DomainDispatcherApplication(create_backend_app)
LOCK = threading.Lock()  # one request at a time: every request is atomic, as in DynamoDB


class SideDoor:
    """The meter's own paths, answered by this server rather than by moto."""

    def __init__(self, meter: Meter, buckets: Buckets | None) -> None:
        self.meter = meter
        self.buckets = buckets

    def answer(self, method: str, path: str) -> tuple[int, dict[str, Any]] | None:
        if path == "/_meter" and method == "GET":
            return 200, self.meter.report()
        if path == "/_meter/reset" and method == "POST":
            report = self.meter.report()
            self.meter.reset()
            if self.buckets is not None:
                self.buckets.reset()
            return 200, report
        if path.startswith("/_meter"):
            return 404, {"message": "GET /_meter or POST /_meter/reset"}
        return None


class Handler(BaseHTTPRequestHandler):
    """Serves the WSGI app over HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    side_door: SideDoor | None = None

    def handle_one_request_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path, _, query = self.path.partition("?")
        if self.side_door is not None:
            with LOCK:
                answer = self.side_door.answer(self.command, path)
            if answer is not None:
                status, document = answer
                payload = json.dumps(document).encode()
                self.respond(status, None, [("Content-Type", "application/json")], payload)
                return
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            variable = "HTTP_" + name.upper().replace("-", "_")
            if variable not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[variable] = value
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            started[:] = [status, headers]

        with LOCK:
            chunks = APP(environ, start_response)
            try:
                payload = b"".join(chunks)
            finally:
                getattr(chunks, "close", lambda: None)()
        status, headers = started
        code, _, reason = status.partition(" ")
        self.respond(int(code), reason, headers, payload)

    def respond(
        self, code: int, reason: str | None, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        self.send_response(code, reason)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one_request_body

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(port: int, side_door: SideDoor | None = None) -> None:
    Handler.side_door = side_door
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's DynamoDB, made faithful (see above).")
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--meter",
        action="store_true",
        help="bill writes as DynamoDB does and count calls; read at GET /_meter",
    )
    parser.add_argument(
        "--partition-wcu",
        type=float,
        metavar="N",
        help="throttle each partition-key value of each table and index at N write units/s",
    )
    args = parser.parse_args(argv)
    side_door = None
    if args.meter or args.partition_wcu is not None:
        if args.partition_wcu is not None and args.partition_wcu <= 0:
            parser.error("--partition-wcu must be positive")
        meter = Meter(args.partition_wcu)
        buckets = None if args.partition_wcu is None else Buckets(args.partition_wcu)
        install(meter, buckets)
        side_door = SideDoor(meter, buckets)
    serve(args.port, side_door)


if __name__ == "__main__":
    main()
