"""The DynamoDB key schema, in one place: the store, `trigger-api tables create` and the CDK
stack (`infra/`) all read it from here. What the items hold is in `items.py`.

Events table:
  event        pk = "T#<tenant>#<shard>"   sk = "<event id>"
  its payload  pk = (the same)             sk = "<event id>#p"   (only when too big to inline)
  counters     pk = "C#<tenant>"           sk = "C"
  idempotency  pk = "I#<tenant>#<sha256 of key>"  sk = "I"
  indexes, both sparse and keys-only (plus what claims need):
    `claim-index`   pk, ck (N: when the event can next be claimed) — undelivered events only
    `status-index`  sp = "T#<tenant>#<shard>#<U|D|X>", sk — events, by status, oldest first
  ttl = expiry, seconds since the epoch (DynamoDB TTL)
API keys table:
  pk = "K#<sha256 of key>"           sk = "K"       (lookup by key)
  pk = "KEYS"                         sk = "<sha256>" (the listing `keys list` reads; no Scan)
  pk = "SECRET#<name>"                sk = "S"       (secrets shared by every task)
  pk = "SHARDS"                       sk = "P"       (the shard plan, `shards.py`)
  pk = "LEASE#<name>"                 sk = "L"       (a lease one task at a time holds)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_EVENTS_TABLE = "TriggerApi-Events"
DEFAULT_KEYS_TABLE = "TriggerApi-TenantApiKeys"
CLAIM_INDEX = "claim-index"
STATUS_INDEX = "status-index"
TTL_ATTRIBUTE = "ttl"

AttributeType = Literal["S", "N"]


@dataclass(frozen=True, slots=True)
class Index:
    """A global secondary index. `projection`: the non-key attributes it copies (KEYS_ONLY when
    empty)."""

    name: str
    partition_key: str
    sort_key: str
    sort_key_type: AttributeType = "S"
    projection: tuple[str, ...] = ()

    def projection_request(self) -> dict[str, object]:
        if not self.projection:
            return {"ProjectionType": "KEYS_ONLY"}
        return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(self.projection)}


@dataclass(frozen=True, slots=True)
class TableSchema:
    partition_key: str
    sort_key: str
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None

    def attribute_types(self) -> dict[str, AttributeType]:
        """Every key attribute of the table and its indexes, with its type."""
        types: dict[str, AttributeType] = {self.partition_key: "S", self.sort_key: "S"}
        for index in self.indexes:
            types.setdefault(index.partition_key, "S")
            types.setdefault(index.sort_key, index.sort_key_type)
        return types

    def index(self, name: str) -> Index:
        return next(index for index in self.indexes if index.name == name)

    def create_table_request(self, name: str) -> dict[str, object]:
        """Arguments for DynamoDB `CreateTable`, on-demand billing."""
        request: dict[str, object] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": t}
                for n, t in sorted(self.attribute_types().items())
            ],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": index.projection_request(),
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
    indexes=(
        # A claim reads only events it can claim now: ck <= now, oldest availability first.
        # `at` (attempts) lets it tell one to kill from one to lease without reading the item.
        Index(CLAIM_INDEX, "pk", "ck", sort_key_type="N", projection=("at",)),
        Index(STATUS_INDEX, "sp", "sk"),
    ),
    ttl_attribute=TTL_ATTRIBUTE,
)
API_KEYS = TableSchema(partition_key="pk", sort_key="sk")
