"""The tables and who may touch them: the key schema the service uses, least-privilege IAM."""

from __future__ import annotations

import re
from pathlib import Path

from service.store import schema
from tests.infra.conftest import (
    Match,
    Synth,
    as_list,
    key_schema,
    of_type,
    statements_of_role,
    table_id,
    task_definition,
)


def test_events_table_matches_the_service_key_schema(synth: Synth) -> None:
    synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "TableName": schema.DEFAULT_EVENTS_TABLE,
                "KeySchema": key_schema(schema.EVENTS),
                "BillingMode": "PAY_PER_REQUEST",
                "GlobalSecondaryIndexes": Match.array_equals(
                    [
                        {
                            "IndexName": schema.CLAIM_INDEX,
                            "KeySchema": [
                                {"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "ck", "KeyType": "RANGE"},
                            ],
                            "Projection": {
                                "ProjectionType": "INCLUDE",
                                "NonKeyAttributes": ["at"],
                            },
                        },
                        {
                            "IndexName": schema.STATUS_INDEX,
                            "KeySchema": [
                                {"AttributeName": "sp", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                        },
                    ]
                ),
                "TimeToLiveSpecification": {
                    "AttributeName": schema.TTL_ATTRIBUTE,
                    "Enabled": True,
                },
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": True,
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


STORE = Path(__file__).resolve().parents[2] / "service" / "store"
# Run by `trigger-api tables create` with the operator's credentials, never by the service.
ADMIN_CALLS = {
    "create_table",
    "describe_table",
    "describe_time_to_live",
    "update_time_to_live",
    "get_waiter",
}
TRANSACTION_ACTIONS = {
    "dynamodb:ConditionCheckItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
}


def test_keys_table_matches_the_service_key_schema(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::DynamoDB::Table", 2)
    synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "TableName": schema.DEFAULT_KEYS_TABLE,
                "KeySchema": key_schema(schema.API_KEYS),
                "BillingMode": "PAY_PER_REQUEST",
                "GlobalSecondaryIndexes": Match.absent(),
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
            "DeletionPolicy": "Retain",
        },
    )


def test_table_attribute_definitions_match_create_table(synth: Synth) -> None:
    """`trigger-api tables create` and the stack build the same tables."""
    for table in (schema.EVENTS, schema.API_KEYS):
        name = schema.DEFAULT_EVENTS_TABLE if table is schema.EVENTS else schema.DEFAULT_KEYS_TABLE
        expected = table.create_table_request(name)
        properties = synth.resources[table_id(synth, name)]["Properties"]
        assert (
            sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"])
            == expected["AttributeDefinitions"]
        )
        assert properties["KeySchema"] == expected["KeySchema"]


def test_api_task_role_reaches_only_its_two_tables_and_their_indexes(synth: Synth) -> None:
    role = task_definition(synth, "api")["TaskRoleArn"]
    events = table_id(synth, schema.DEFAULT_EVENTS_TABLE)
    keys = table_id(synth, schema.DEFAULT_KEYS_TABLE)
    allowed = [
        {"Fn::GetAtt": [events, "Arn"]},
        {"Fn::GetAtt": [keys, "Arn"]},
        *(
            {"Fn::Join": ["", [{"Fn::GetAtt": [events, "Arn"]}, f"/index/{index}"]]}
            for index in (schema.CLAIM_INDEX, schema.STATUS_INDEX)
        ),
    ]
    statements = statements_of_role(synth, role)
    assert statements
    granted = [r for s in statements for r in as_list(s["Resource"])]
    assert all(resource in allowed for resource in granted), granted
    assert all(s["Effect"] == "Allow" for s in statements)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert all(a.startswith("dynamodb:") and "*" not in a for a in actions)
    assert "dynamodb:Scan" not in actions
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= actions


def test_api_task_role_allows_every_call_the_dynamodb_store_makes() -> None:
    """moto does not enforce IAM: a call the role lacks would first fail in AWS."""
    from infra.data import ITEM_ACTIONS

    # SQLite's modules, and `trigger-api tables create` (run by an operator) aside
    sources = [
        module.read_text()
        for module in STORE.glob("*.py")
        if not module.name.startswith(("sqlite", "writer", "tables"))
    ]
    calls = {
        call for source in sources for call in re.findall(r"\b(?:_db|db|once)\.([a-z_]+)\(", source)
    } - ADMIN_CALLS
    # batch_client.py calls DynamoDB by its wire name, without botocore.
    calls |= {
        re.sub(r"(?<!^)(?=[A-Z])", "_", target).lower()
        for source in sources
        for target in re.findall(r'"DynamoDB_20120810\.([A-Za-z]+)"', source)
    }
    assert {"get_item", "batch_write_item", "query"} <= calls
    for call in calls:
        if call == "transact_write_items":
            assert set(ITEM_ACTIONS) >= TRANSACTION_ACTIONS
        else:
            action = "dynamodb:" + "".join(part.capitalize() for part in call.split("_"))
            assert action in ITEM_ACTIONS, call


def test_worker_task_role_has_no_permissions(synth: Synth) -> None:
    role = task_definition(synth, "worker")["TaskRoleArn"]
    assert statements_of_role(synth, role) == []


def test_only_the_api_task_role_may_touch_dynamodb(synth: Synth) -> None:
    api_role = task_definition(synth, "api")["TaskRoleArn"]["Fn::GetAtt"][0]
    for policy in of_type(synth, "AWS::IAM::Policy").values():
        actions = [
            a
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            for a in as_list(s["Action"])
        ]
        if any(a.startswith("dynamodb:") for a in actions):
            assert policy["Properties"]["Roles"] == [{"Ref": api_role}]


def test_no_statement_grants_a_wildcard_resource_beyond_the_ecr_token(synth: Synth) -> None:
    """The cdk-nag IAM5 acknowledgments (infra/nag.py) rely on this."""
    for policy in of_type(synth, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" in as_list(statement["Resource"]):
                assert statement["Action"] == "ecr:GetAuthorizationToken"
