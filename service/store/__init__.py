"""Storage adapters behind one port (`base.Store`); `open_store` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.store.base import Store

if TYPE_CHECKING:  # settings imports the schema from this package: no import cycle at run time
    from service.settings import Settings


def open_store(settings: Settings) -> Store:
    """An unstarted store for the settings; the DynamoDB adapter is imported only when used."""
    if settings.store == "dynamodb":
        from service.store.dynamodb import DynamoStore

        return DynamoStore(
            events_table=settings.events_table,
            keys_table=settings.keys_table,
            endpoint_url=settings.dynamodb_endpoint,
            region=settings.region,
            shards=settings.shards,
            tenant_shards=settings.shards_by_tenant,
            undelivered_retention_ms=settings.undelivered_retention_ms,
            delivered_retention_ms=settings.delivered_retention_ms,
        )
    from service.store.sqlite import SqliteStore

    return SqliteStore(settings.db)
