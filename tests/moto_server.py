"""moto's DynamoDB server for the tests and benchmarks, run single-threaded.

`python -m moto.server` serves each request on its own thread without a lock around the
backend, so two conditional updates of one item can both succeed — which real DynamoDB never
allows. One thread makes every request atomic, as DynamoDB's are. (werkzeug then closes the
connection after every response, so each call opens a new one, unlike real DynamoDB.)

    python tests/moto_server.py PORT
"""

from __future__ import annotations

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


if __name__ == "__main__":
    run_simple(
        "127.0.0.1",
        int(sys.argv[1]),
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=QuietHandler,
    )
