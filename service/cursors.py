"""Opaque, signed, tenant-bound listing cursors.

A cursor is base64url(JSON [tenant, status, last id]) + "." + a truncated HMAC-SHA256 of it,
keyed by the store's shared secret so every service task accepts every other task's cursors.
A cursor that was altered, or that belongs to another tenant or status, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec

from service.ids import is_event_id
from service.problems import ApiError

_decoder = msgspec.json.Decoder(tuple[str, str, str])


def invalid_cursor(detail: str) -> ApiError:
    return ApiError(400, "invalid_cursor", detail)


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, body: bytes) -> str:
        digest = hmac.new(self._secret, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def encode(self, tenant: str, status: str | None, last_id: str) -> str:
        body = base64.urlsafe_b64encode(msgspec.json.encode([tenant, status or "", last_id]))
        return f"{body.rstrip(b'=').decode()}.{self._sign(body.rstrip(b'='))}"

    def decode(self, cursor: str, tenant: str, status: str | None) -> str:
        """The last id of the previous page, or ApiError 400 `invalid_cursor`."""
        body, _, signature = cursor.partition(".")
        if not body.isascii() or not signature.isascii():
            raise invalid_cursor("The cursor is not one this service issued.")
        if not hmac.compare_digest(self._sign(body.encode()), signature):
            raise invalid_cursor("The cursor is not one this service issued.")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            owner, cursor_status, last_id = _decoder.decode(raw)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise invalid_cursor("The cursor is not one this service issued.") from None
        if owner != tenant:
            raise invalid_cursor("The cursor belongs to another API key's tenant.")
        if cursor_status != (status or ""):
            raise invalid_cursor("The cursor was issued for another status filter.")
        if not is_event_id(last_id):
            raise invalid_cursor("The cursor is not one this service issued.")
        return last_id
