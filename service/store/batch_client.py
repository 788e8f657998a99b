"""BatchWriteItem without botocore's request pipeline: the hot path of single-event creates.

botocore spends most of a call's CPU on things a batch of new items does not need: walking the
request's shape to validate and serialize every attribute of every item, its event hooks,
building a general request to sign, and parsing the answer back through the shape. DynamoDB's
JSON protocol is the parameters as JSON (binary values in base64), so msgspec writes the body
directly; `Signer` signs this one kind of request with AWS Signature Version 4, as botocore's
`SigV4Auth` does (its signing key kept for the day), with the session's credentials (refreshed
as botocore refreshes them); and aiohttp, which aiobotocore uses too, sends it over kept-alive
connections.

It never retries, like the coalescer's other client: the coalescer decides what a failure means.
Failures look like botocore's: `ClientError` with DynamoDB's error code for an error answer
(throttling, a missing table, a 5xx), `HTTPClientError` when no answer came.
tests/store/test_batch_client.py checks the body and the signature against botocore's own
path for the versions uv.lock pins.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import aioboto3
import aiohttp
import msgspec
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError

TARGET = "DynamoDB_20120810.BatchWriteItem"
CONTENT_TYPE = "application/x-amz-json-1.0"

_encode = msgspec.json.Encoder().encode


class _Answer(msgspec.Struct):
    UnprocessedItems: dict[str, list[dict[str, Any]]] = {}


class _Error(msgspec.Struct, rename={"kind": "__type"}):
    kind: str = ""
    message: str = ""
    Message: str = ""


_answer = msgspec.json.Decoder(_Answer)
_error = msgspec.json.Decoder(_Error)


def request_body(table: str, items: Sequence[Mapping[str, Any]]) -> bytes:
    return _encode({"RequestItems": {table: [{"PutRequest": {"Item": item}} for item in items]}})


class BatchClient:
    def __init__(
        self,
        session: aioboto3.Session,
        *,
        endpoint_url: str | None,
        region: str,
        connect_timeout: float = 1.0,
        read_timeout: float = 3.0,
    ) -> None:
        self._session = session
        self._url = endpoint_url or f"https://dynamodb.{region}.amazonaws.com"
        self._region = region
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout)
        self._http: aiohttp.ClientSession | None = None
        self._credentials: Any = None
        self._signer = Signer(urlsplit(self._url).netloc, region)

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64),
            timeout=self._timeout,
            # Nothing a DynamoDB answer needs: cookies, compression, default headers.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        # Awaitable at run time (aiobotocore's session), whatever the type stubs say.
        self._credentials = await cast("Any", self._session.get_credentials())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def signed_headers(self, body: bytes, now: datetime | None = None) -> dict[str, str]:
        """The headers of a BatchWriteItem call with `body`, signed (SigV4)."""
        if self._credentials is None:
            raise NoCredentialsError()
        credentials = await self._credentials.get_frozen_credentials()
        return self._signer.headers(credentials, body, now or datetime.now(UTC))

    async def batch_write(
        self, table: str, items: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Put `items` in one BatchWriteItem; return the ones DynamoDB left unprocessed (as JSON
        values: their binary attributes in base64, which only their keys are read for)."""
        if self._http is None:
            raise RuntimeError("BatchClient used before start()")
        body = request_body(table, items)
        headers = await self.signed_headers(body)
        try:
            async with self._http.post(self._url + "/", data=body, headers=headers) as response:
                answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise HTTPClientError(error=error) from error
        if status == 200:
            unprocessed = _answer.decode(answer).UnprocessedItems.get(table, [])
            return [request["PutRequest"]["Item"] for request in unprocessed]
        raise _client_error(status, answer)


class Signer:
    """AWS Signature Version 4 for a BatchWriteItem call: `POST /` with a JSON body."""

    def __init__(self, host: str, region: str) -> None:
        self._host = host
        self._region = region
        self._key: tuple[str, str, bytes] | None = None  # (day, secret key, signing key)

    def headers(self, credentials: Any, body: bytes, now: datetime) -> dict[str, str]:
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self._host,
            "x-amz-date": stamp,
        }
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        headers["x-amz-target"] = TARGET
        names = ";".join(headers)
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                "".join(f"{name}:{value}\n" for name, value in headers.items()),
                names,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self._region}/dynamodb/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(
            self._signing_key(day, credentials.secret_key), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        del headers["host"]  # aiohttp sends it
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope},"
            f" SignedHeaders={names}, Signature={signature}"
        )
        return headers

    def _signing_key(self, day: str, secret: str) -> bytes:
        if self._key is None or self._key[:2] != (day, secret):
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, "dynamodb", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key = (day, secret, key)
        return self._key[2]


def _client_error(status: int, answer: bytes) -> ClientError:
    try:
        error = _error.decode(answer)
    except msgspec.DecodeError:
        error = _Error()
    code = error.kind.rpartition("#")[2] or ("InternalServerError" if status >= 500 else "")
    message = error.message or error.Message
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "BatchWriteItem")
