"""Request bodies in, JSON bodies out: the reading and writing every route shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from service.models import encode
from service.problems import too_large, validation_error
from service.request_ids import request_id
from service.strict_json import parse

T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed `limit` bytes.

    Reads the ASGI messages directly: Starlette's `Request.stream()` is an async generator,
    which costs more than the rest of reading a small body."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"The request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode a JSON body into its Struct, or 422 saying what is wrong and where."""
    return parse_and_decode(decoder, body)[1]


def parse_and_decode(
    decoder: msgspec.json.Decoder[T], body: bytes, *, check_depth: bool = True
) -> tuple[Any, T]:
    """The body as plain values (it must be I-JSON: `service/strict_json.py`) and as its Struct."""
    value = parse(body, check_depth=check_depth)
    try:
        return value, decoder.decode(body)
    except msgspec.DecodeError as error:
        raise validation_error(str(error)) from None


def json_response(
    request: Request, value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return raw_json_response(request, encode(value), status, headers)


def raw_json_response(
    request: Request, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(body, status, _with_id(request, headers), media_type="application/json")


def empty_response(request: Request, status: int = 204) -> Response:
    return Response(status_code=status, headers=_with_id(request, None))


def _with_id(request: Request, headers: Mapping[str, str] | None) -> dict[str, str]:
    return {**(headers or {}), "X-Request-ID": request_id(request)}
