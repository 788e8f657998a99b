"""The DynamoDB key schema, in one place: the store, `trigger-api tables create` and the CDK
stack (`infra/`) all read it from here.

Events table, one item per event:
  pk = "T#<tenant>"                  sk = "E#<event id>"
  gsi1pk = "T#<tenant>#<status>"     gsi1sk = "<event id>"        (index `status-index`)
  ttl = expiry, seconds since the epoch (DynamoDB TTL)
Idempotency records live in the same table, in a partition of their own per key:
  pk = "I#<tenant>#<sha256 of key>"  sk = "I"
API keys table:
  pk = "K#<sha256 of key>"           sk = "K"       (lookup by key)
  pk = "KEYS"                         sk = "<sha256>" (the listing `keys list` reads; no Scan)
  pk = "SECRET#<name>"                sk = "S"       (secrets shared by every task)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EVENTS_TABLE = "TriggerApi-Events"
DEFAULT_KEYS_TABLE = "TriggerApi-TenantApiKeys"
STATUS_INDEX = "status-index"
TTL_ATTRIBUTE = "ttl"


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True, slots=True)
class TableSchema:
    """Every attribute here is a string (`S`) key attribute."""

    partition_key: str
    sort_key: str
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None

    def create_table_request(self, name: str) -> dict[str, object]:
        """Arguments for DynamoDB `CreateTable`, on-demand billing."""
        names = {self.partition_key, self.sort_key}
        for index in self.indexes:
            names |= {index.partition_key, index.sort_key}
        request: dict[str, object] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": "S"} for n in sorted(names)
            ],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        return request


def _key_schema(partition_key: str, sort_key: str) -> list[dict[str, str]]:
    return [
        {"AttributeName": partition_key, "KeyType": "HASH"},
        {"AttributeName": sort_key, "KeyType": "RANGE"},
    ]


EVENTS = TableSchema(
    partition_key="pk",
    sort_key="sk",
    indexes=(Index(STATUS_INDEX, "gsi1pk", "gsi1sk"),),
    ttl_attribute=TTL_ATTRIBUTE,
)
API_KEYS = TableSchema(partition_key="pk", sort_key="sk")
