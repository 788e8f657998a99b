"""The fast BatchWriteItem path sends what botocore's stock path would: the same body (as JSON)
and, for the same credentials and time, the same signature. For the botocore that uv.lock
pins; a new botocore that serialized or signed differently fails here first."""

from __future__ import annotations

import datetime
import json
from typing import Any

import aioboto3
import botocore.auth
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer

from service.ids import new_event_id
from service.store import items
from service.store.base import NewEvent
from service.store.batch_client import CONTENT_TYPE, TARGET, BatchClient, Signer, request_body

NOW = datetime.datetime(2026, 11, 30, 6, 30, 15, tzinfo=datetime.UTC)
ENDPOINT = "https://dynamodb.eu-west-1.amazonaws.com"


def some_items() -> list[dict[str, Any]]:
    made = []
    for payload in (b'{"a": 1}', b'{"big": "' + b"x" * 3000 + b'"}'):
        event = NewEvent(new_event_id(1_796_017_256_712), 1_796_017_256_712, payload, 2**41)
        item, payload_item = items.new_items("acme", 3, event, 2**42)
        made += [item] + ([payload_item] if payload_item else [])
    return made


def stock_request(body_params: dict[str, Any]) -> AWSRequest:
    """The request botocore's own serializer builds for BatchWriteItem."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    operation = model.operation_model("BatchWriteItem")
    serialized = create_serializer("json").serialize_to_request(body_params, operation)
    return AWSRequest(
        method="POST",
        url=ENDPOINT + "/",
        data=serialized["body"],
        headers={
            "Content-Type": serialized["headers"]["Content-Type"],
            "X-Amz-Target": serialized["headers"]["X-Amz-Target"],
        },
    )


def test_the_body_is_botocores() -> None:
    written = some_items()
    stock = stock_request(
        {"RequestItems": {"Events": [{"PutRequest": {"Item": i}} for i in written]}}
    )

    ours = request_body("Events", written)

    assert json.loads(ours) == json.loads(stock.body)
    assert stock.headers["Content-Type"] == CONTENT_TYPE
    assert stock.headers["X-Amz-Target"] == TARGET


@pytest.mark.parametrize("token", [None, "session-token-of-a-task-role"])
def test_the_signature_is_botocores(token: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = request_body("Events", some_items())
    stock = stock_request(json.loads(body))
    stock.data = body
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(stock)

    ours = Signer("dynamodb.eu-west-1.amazonaws.com", "eu-west-1").headers(credentials, body, NOW)

    assert ours["Authorization"] == stock.headers["Authorization"]
    assert ours["x-amz-date"] == stock.headers["X-Amz-Date"]
    assert ours.get("x-amz-security-token") == stock.headers.get("X-Amz-Security-Token")


async def test_a_second_signature_the_same_day_reuses_the_key_and_still_matches() -> None:
    credentials = Credentials("AKID", "secret")
    signer = Signer("dynamodb.eu-west-1.amazonaws.com", "eu-west-1")
    first = signer.headers(credentials, b"{}", NOW)
    later = signer.headers(credentials, b"{}", NOW + datetime.timedelta(hours=1))
    rotated = signer.headers(Credentials("AKID", "rotated"), b"{}", NOW)

    assert first["Authorization"] != later["Authorization"]  # the time is signed
    assert rotated["Authorization"] != first["Authorization"]  # a new key is derived
    again = Signer("dynamodb.eu-west-1.amazonaws.com", "eu-west-1").headers(credentials, b"{}", NOW)
    assert again == first


async def test_without_credentials_it_refuses_to_send(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    client = BatchClient(aioboto3.Session(), endpoint_url="http://127.0.0.1:9", region="us-east-1")
    await client.start()
    try:
        with pytest.raises(botocore.exceptions.NoCredentialsError):
            await client.batch_write("Events", some_items())
    finally:
        await client.close()
