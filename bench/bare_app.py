"""The baseline for bench/ingest.py: a bare Starlette endpoint that only parses the JSON body,
served by uvicorn exactly as `trigger-api serve` is (uvloop, httptools, no access log).

    python bench/bare_app.py PORT [DELAY_MS]

With DELAY_MS it answers that long after the body arrived (bench/cpu_floor.py: the bare
endpoint at a slow store's rate)."""

from __future__ import annotations

import asyncio
import sys

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DELAY = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0


async def ingest(request: Request) -> Response:
    msgspec.json.decode(await request.body())
    if DELAY:
        await asyncio.sleep(DELAY)
    return Response(b'{"status":"undelivered"}', 201, media_type="application/json")


app = Starlette(routes=[Route("/v1/events", ingest, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
