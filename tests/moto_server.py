"""moto's DynamoDB server for the tests and benchmarks, run single-threaded.

`python -m moto.server` serves each request on its own thread without a lock around the
backend, so two conditional updates of one item can both succeed — which real DynamoDB never
allows. One thread makes every request atomic, as DynamoDB's are.

    python tests/moto_server.py PORT [--threaded]

`--threaded` (for benchmarks only) serves connections concurrently and keeps them alive, as
DynamoDB does; werkzeug closes every connection when it runs single-threaded.
"""

from __future__ import annotations

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


class KeepAliveHandler(QuietHandler):
    """werkzeug ends every response with `Connection: close`; DynamoDB keeps connections open.
    moto reads every request body whole, so the next request line is where it should be."""

    protocol_version = "HTTP/1.1"

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() != "connection":
            super().send_header(keyword, value)


if __name__ == "__main__":
    threaded = "--threaded" in sys.argv
    run_simple(
        "127.0.0.1",
        int(sys.argv[1]),
        DomainDispatcherApplication(create_backend_app),
        threaded=threaded,
        request_handler=KeepAliveHandler if threaded else QuietHandler,
    )
