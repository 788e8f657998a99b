"""moto's DynamoDB server for the tests and benchmarks, run single-threaded.

`python -m moto.server` serves each request on its own thread without a lock around the
backend, so two conditional updates of one item can both succeed — which real DynamoDB never
allows. One thread makes every request atomic, as DynamoDB's are. HTTP/1.1 keeps connections
alive, as DynamoDB does.

    python tests/moto_server.py PORT
"""

from __future__ import annotations

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


if __name__ == "__main__":
    run_simple(
        "127.0.0.1",
        int(sys.argv[1]),
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=KeepAliveHandler,
    )
