"""The store contract runs on a third store too: DynamoDB with every tenant's events spread over
four shards, so listing merges and claims go across partition keys."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from service.settings import Settings
from service.store import open_store
from service.store.base import Store
from tests.conftest import STORE_KINDS, create_dynamo_tables

SHARDED = "dynamodb_sharded"


@pytest.fixture(params=[*STORE_KINDS, SHARDED])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def dynamodb_sharded_settings(moto_endpoint: str, dynamodb_settings: Settings) -> Settings:
    events_table, keys_table = await create_dynamo_tables(moto_endpoint)
    return dataclasses.replace(
        dynamodb_settings, events_table=events_table, keys_table=keys_table, shards=4
    )


@pytest.fixture(scope="session")
async def dynamodb_sharded_store(dynamodb_sharded_settings: Settings) -> AsyncIterator[Store]:
    async with open_store(dynamodb_sharded_settings) as store:
        yield store
