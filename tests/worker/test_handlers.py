"""Loading a handler from `module:function`, and the built-in handlers."""

from __future__ import annotations

import logging

import pytest

from tests.worker import handlers as test_handlers
from worker.handlers import HandlerError, current_tenant, load_handler, log_event, noop


def test_load_handler_finds_an_async_function() -> None:
    assert load_handler("tests.worker.handlers:record") is test_handlers.record
    assert load_handler("worker.handlers:noop") is noop


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("worker.handlers", "module:function"),
        (":noop", "module:function"),
        ("no_such_module_here:handle", "cannot import handler module"),
        ("worker.handlers:missing", "has no attribute"),
        ("tests.worker.handlers:not_async", "must be an async function"),
    ],
)
def test_unusable_handler_is_refused(spec: str, message: str) -> None:
    with pytest.raises(HandlerError, match=message):
        load_handler(spec)


async def test_default_handler_logs_tenant_id_and_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    token = current_tenant.set("acme")
    try:
        await log_event({"id": "evt_1", "payload": {"email": "alice@acme.com", "n": 1}})
    finally:
        current_tenant.reset(token)

    [line] = [record.getMessage() for record in caplog.records]
    assert line == (
        'msg="processing event" tenant=acme event=evt_1 '
        'payload="{\\"email\\":\\"alice@acme.com\\",\\"n\\":1}"'
    )
