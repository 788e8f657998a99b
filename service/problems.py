"""RFC 9457 problem responses, and the mapping from every failure to one of them.

Routes raise `ApiError`; store failures arrive as `StoreUnavailable`; anything unexpected
becomes a bare 500 that never carries the exception's text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from service.models import Problem, encode
from service.request_ids import request_id
from service.store.base import StoreError

log = logging.getLogger("trigger_api")
RETRY_AFTER_SECONDS = "1"
# RFC 9110's names, where Python 3.11's HTTPStatus still has the older ones.
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


def not_found(detail: str = "No such event.") -> ApiError:
    return ApiError(404, "not_found", detail)


def validation_error(detail: str) -> ApiError:
    return ApiError(422, "validation_error", detail)


def too_large(detail: str) -> ApiError:
    return ApiError(413, "payload_too_large", detail)


def title(status: int) -> str:
    return TITLES.get(status) or HTTPStatus(status).phrase


def problem_response(request: Request, error: ApiError) -> Response:
    rid = request_id(request)
    body = Problem(
        type="about:blank",
        title=title(error.status),
        status=error.status,
        detail=error.detail,
        code=error.code,
        request_id=rid,
    )
    headers = {**error.headers, "X-Request-ID": rid}
    return Response(
        encode(body),
        status_code=error.status,
        headers=headers,
        media_type="application/problem+json",
    )


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(request, exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's own 404 (no such route) and 405 (wrong method), as problem documents.
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"))
    detail = {404: "No such route.", 405: "Method not allowed on this route."}.get(
        exc.status_code, str(exc.detail)
    )
    return problem_response(request, ApiError(exc.status_code, code, detail, exc.headers))


def _about(request: Request, exc: Exception) -> dict[str, object]:
    """A failed request, for a log line a client's report can be matched with (`request_id`)."""
    route = request.scope.get("route")
    return {
        "fields": {
            "request_id": request_id(request),
            "method": request.method,
            "route": getattr(route, "path", None),
            "path": request.url.path,
            "error": repr(exc),
        }
    }


async def on_store_error(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable", extra=_about(request, exc))
    return problem_response(
        request,
        ApiError(
            503,
            "unavailable",
            "The event store is unavailable; retry shortly.",
            {"Retry-After": RETRY_AFTER_SECONDS},
        ),
    )


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client left mid-body: nothing was stored, and nobody will read this answer.
    return problem_response(
        request, ApiError(400, "client_disconnected", "The client closed the request early.")
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra=_about(request, exc))
    return problem_response(request, ApiError(500, "internal_error", "An internal error occurred."))


EXCEPTION_HANDLERS = {
    ApiError: on_api_error,
    HTTPException: on_http_exception,
    ClientDisconnect: on_client_disconnect,
    StoreError: on_store_error,
    TimeoutError: on_store_error,
    Exception: on_unexpected,
}
