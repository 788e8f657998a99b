"""Storage adapters behind one port (`base.Store`); `open_store` picks one from the settings."""

from __future__ import annotations

from service.settings import Settings
from service.store.base import Store


def open_store(settings: Settings) -> Store:
    """An unstarted store for the settings; the DynamoDB adapter is imported only when used."""
    if settings.store == "dynamodb":
        from service.store.dynamodb import DynamoStore

        return DynamoStore(
            events_table=settings.events_table,
            keys_table=settings.keys_table,
            endpoint_url=settings.dynamodb_endpoint,
            region=settings.region,
        )
    from service.store.sqlite import SqliteStore

    return SqliteStore(settings.db)
