"""The two DynamoDB tables, built from the key schema the service uses (`service.store.schema`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from service.store import schema

# Every call the DynamoDB store makes while serving (tests/infra check the store's code against
# this list); transactions need the actions of the writes inside them. Creating tables is
# `trigger-api tables create`, run by an operator, not by the service.
ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]


class Data(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        events_table_name: str,
        keys_table_name: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.events = _table(
            self, "Events", events_table_name, schema.EVENTS, removal_policy=removal_policy
        )
        self.keys = _table(
            self, "ApiKeys", keys_table_name, schema.API_KEYS, removal_policy=removal_policy
        )

    def grant_service_access(self, grantee: iam.IGrantable) -> None:
        """What the API's store needs: item reads and writes on both tables (batches too),
        queries on exactly the indexes it has. Written out rather than `grant_read_write_data`,
        which adds `Scan` and every index (`index/*`)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=ITEM_ACTIONS,
                resources=[self.events.table_arn, self.keys.table_arn],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[
                    f"{self.events.table_arn}/index/{index.name}" for index in schema.EVENTS.indexes
                ],
            )
        )


def _table(
    scope: Construct,
    construct_id: str,
    table_name: str,
    table_schema: schema.TableSchema,
    *,
    removal_policy: RemovalPolicy,
) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        construct_id,
        table_name=table_name,
        partition_key=_string(table_schema.partition_key),
        sort_key=_string(table_schema.sort_key),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=table_schema.ttl_attribute,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=removal_policy,
        deletion_protection=removal_policy == RemovalPolicy.RETAIN,
    )
    for index in table_schema.indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_string(index.partition_key),
            sort_key=dynamodb.Attribute(name=index.sort_key, type=_TYPES[index.sort_key_type]),
            projection_type=(
                dynamodb.ProjectionType.INCLUDE
                if index.projection
                else dynamodb.ProjectionType.KEYS_ONLY
            ),
            non_key_attributes=list(index.projection) or None,
        )
    return table


_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)
