"""The synthesized template: properties, never logical ids (those are found by property)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from infra.settings import DeploySettings
from service.cli import GRACEFUL_SHUTDOWN_SECONDS
from service.store import schema
from tests.infra.conftest import (
    AZS,
    DOMAIN_NAME,
    REGION,
    Match,
    Synth,
    cdk_json_context,
    of_type,
    only,
)
from worker.config import Settings as WorkerSettings
from worker.tenant import WIND_DOWN_CAP

LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
SCALABLE_TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
SCALING_POLICY = "AWS::ApplicationAutoScaling::ScalingPolicy"
CPU_METRIC = "ECSServiceAverageCPUUtilization"
DYNAMODB_STORE = Path(__file__).resolve().parents[2] / "service" / "store" / "dynamodb.py"
# Run by `trigger-api tables create` with the operator's credentials, never by the service.
ADMIN_CALLS = {
    "create_table",
    "describe_table",
    "describe_time_to_live",
    "update_time_to_live",
    "get_waiter",
}
# What the `synth` fixture deploys: cdk.json's context.
DEPLOYED = DeploySettings.from_context({**cdk_json_context(), "region": REGION}, {})
TRANSACTION_ACTIONS = {
    "dynamodb:ConditionCheckItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
}


def task_definition(synth: Synth, container: str) -> dict[str, Any]:
    properties = only(
        {
            k: v
            for k, v in of_type(synth, "AWS::ECS::TaskDefinition").items()
            if [c["Name"] for c in v["Properties"]["ContainerDefinitions"]] == [container]
        }
    )[1]["Properties"]
    assert isinstance(properties, dict)
    return properties


def statements_of_role(synth: Synth, role_ref: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = role_ref["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in of_type(synth, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    role = synth.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    for inline in role.get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def table_id(synth: Synth, name: str) -> str:
    return only(
        {
            k: v
            for k, v in of_type(synth, "AWS::DynamoDB::Table").items()
            if v["Properties"]["TableName"] == name
        }
    )[0]


def key_schema(table: schema.TableSchema) -> list[dict[str, str]]:
    return [
        {"AttributeName": table.partition_key, "KeyType": "HASH"},
        {"AttributeName": table.sort_key, "KeyType": "RANGE"},
    ]


def test_api_and_worker_run_as_two_fargate_services_with_rollback(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::ECS::Service", 2)
    synth.template.all_resources_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": "FARGATE",
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            },
        },
    )
    synth.template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )


def test_both_services_run_the_same_image(synth: Synth) -> None:
    api = task_definition(synth, "api")["ContainerDefinitions"][0]
    worker = task_definition(synth, "worker")["ContainerDefinitions"][0]
    assert api["Image"] == worker["Image"]
    assert api["Command"] == [
        "trigger-api", "serve", "--host", "0.0.0.0", "--port", "8000", "--store", "dynamodb"
    ]  # fmt: skip
    assert worker["Command"] == ["trigger-worker"]
    beat = next(e["Value"] for e in worker["Environment"] if e["Name"] == "WORKER_HEARTBEAT_FILE")
    assert worker["HealthCheck"]["Command"][0] == "CMD-SHELL"
    assert f"getmtime('{beat}')" in worker["HealthCheck"]["Command"][1]


def test_tasks_stop_cleanly_before_ecs_kills_them(synth: Synth) -> None:
    api = task_definition(synth, "api")["ContainerDefinitions"][0]
    worker = task_definition(synth, "worker")["ContainerDefinitions"][0]
    assert api["StopTimeout"] > GRACEFUL_SHUTDOWN_SECONDS
    assert not any(e["Name"] == "WORKER_GRACE_SECONDS" for e in worker["Environment"])
    assert worker["StopTimeout"] >= WorkerSettings(tenants=()).grace_seconds + WIND_DOWN_CAP


def test_api_task_is_configured_for_its_tables_behind_the_proxy(synth: Synth) -> None:
    api = task_definition(synth, "api")["ContainerDefinitions"][0]
    environment = {e["Name"]: e["Value"] for e in api["Environment"]}
    assert environment["TRIGGER_STORE"] == "dynamodb"
    assert environment["TRIGGER_EVENTS_TABLE"] == {
        "Ref": table_id(synth, schema.DEFAULT_EVENTS_TABLE)
    }
    assert environment["TRIGGER_KEYS_TABLE"] == {"Ref": table_id(synth, schema.DEFAULT_KEYS_TABLE)}
    assert environment["AWS_DEFAULT_REGION"] == REGION
    assert environment["FORWARDED_ALLOW_IPS"] == "*"
    assert api["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]


def test_load_balancer_checks_health_on_the_health_route(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/health", "Matcher": {"HttpCode": "200"}, "TargetType": "ip"},
    )
    synth.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "access_logs.s3.enabled", "Value": "true"}]
            ),
        },
    )
    synth.template.has_resource_properties(
        "AWS::ECS::Service",
        {"LoadBalancers": [Match.object_like({"ContainerName": "api", "ContainerPort": 8000})]},
    )


def test_without_a_certificate_the_load_balancer_listens_on_http(synth: Synth) -> None:
    synth.template.resource_count_is(LISTENER, 1)
    synth.template.has_resource_properties(LISTENER, {"Port": 80, "Protocol": "HTTP"})
    assert synth.outputs["ApiUrl"]["Value"]["Fn::Join"][1][0] == "http://"


def test_with_a_certificate_https_serves_and_http_redirects(synth_https: Synth) -> None:
    synth_https.template.resource_count_is(LISTENER, 2)
    synth_https.template.has_resource_properties(
        LISTENER,
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": Match.string_like_regexp("^arn:aws:acm:")}],
            "SslPolicy": Match.string_like_regexp("TLS13"),
        },
    )
    synth_https.template.has_resource_properties(
        LISTENER,
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": Match.object_like({"Port": "443", "Protocol": "HTTPS"}),
                }
            ],
        },
    )
    assert synth_https.outputs["ApiUrl"]["Value"] == f"https://{DOMAIN_NAME}"
    worker = task_definition(synth_https, "worker")["ContainerDefinitions"][0]
    assert {"Name": "API_URL", "Value": f"https://{DOMAIN_NAME}"} in worker["Environment"]


def test_events_table_matches_the_service_key_schema(synth: Synth) -> None:
    index = schema.EVENTS.indexes[0]
    synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "TableName": schema.DEFAULT_EVENTS_TABLE,
                "KeySchema": key_schema(schema.EVENTS),
                "BillingMode": "PAY_PER_REQUEST",
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": schema.STATUS_INDEX,
                        "KeySchema": [
                            {"AttributeName": index.partition_key, "KeyType": "HASH"},
                            {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
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


def test_api_task_role_reaches_only_its_two_tables_and_the_status_index(synth: Synth) -> None:
    role = task_definition(synth, "api")["TaskRoleArn"]
    events = table_id(synth, schema.DEFAULT_EVENTS_TABLE)
    keys = table_id(synth, schema.DEFAULT_KEYS_TABLE)
    allowed = [
        {"Fn::GetAtt": [events, "Arn"]},
        {"Fn::GetAtt": [keys, "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [events, "Arn"]}, f"/index/{schema.STATUS_INDEX}"]]},
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
    from infra.data import ITEM_ACTIONS

    """moto does not enforce IAM: a call the role lacks would first fail in AWS."""
    calls = set(re.findall(r"self\._db\.([a-z_]+)\(", DYNAMODB_STORE.read_text())) - ADMIN_CALLS
    assert "get_item" in calls
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


def test_worker_reads_its_keys_from_the_secret_and_calls_the_load_balancer(synth: Synth) -> None:
    secret = only(of_type(synth, "AWS::SecretsManager::Secret"))[0]
    definition = task_definition(synth, "worker")
    container = definition["ContainerDefinitions"][0]
    assert container["Secrets"] == [
        {"Name": name, "ValueFrom": {"Fn::Join": ["", [{"Ref": secret}, f":{name}::"]]}}
        for name in ("API_KEYS", "TENANT_NAMES")
    ]
    load_balancer = only(of_type(synth, "AWS::ElasticLoadBalancingV2::LoadBalancer"))[0]
    assert {
        "Name": "API_URL",
        "Value": {"Fn::Join": ["", ["http://", {"Fn::GetAtt": [load_balancer, "DNSName"]}]]},
    } in container["Environment"]
    assert not any("KEY" in variable["Name"] for variable in container["Environment"])
    # The execution role (not the task role) reads the secret, and only this one.
    reads = [
        s
        for s in statements_of_role(synth, definition["ExecutionRoleArn"])
        if "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    assert [s["Resource"] for s in reads] == [{"Ref": secret}]


def target_tracking(metric: str, target: int) -> dict[str, Any]:
    specification = Match.object_like({"PredefinedMetricType": metric})
    return {
        "TargetTrackingScalingPolicyConfiguration": Match.object_like(
            {"PredefinedMetricSpecification": specification, "TargetValue": target}
        )
    }


def test_api_scales_on_cpu_and_on_requests_per_target(synth: Synth) -> None:
    synth.template.has_resource_properties(
        SCALABLE_TARGET,
        {
            "MinCapacity": DEPLOYED.api_min_tasks,
            "MaxCapacity": DEPLOYED.api_max_tasks,
            "ScalableDimension": "ecs:service:DesiredCount",
        },
    )
    synth.template.has_resource_properties(
        SCALING_POLICY,
        target_tracking("ALBRequestCountPerTarget", DEPLOYED.api_requests_per_target),
    )
    synth.template.has_resource_properties(
        SCALING_POLICY, target_tracking(CPU_METRIC, DEPLOYED.api_cpu_target_percent)
    )


def test_worker_scales_within_its_bounds(synth: Synth) -> None:
    synth.template.resource_count_is(SCALABLE_TARGET, 2)
    synth.template.has_resource_properties(
        SCALABLE_TARGET,
        {"MinCapacity": DEPLOYED.worker_min_tasks, "MaxCapacity": DEPLOYED.worker_max_tasks},
    )
    synth.template.has_resource_properties(
        SCALING_POLICY, target_tracking(CPU_METRIC, DEPLOYED.worker_cpu_target_percent)
    )


def test_network_spans_two_fixed_azs_with_a_dynamodb_gateway_endpoint(synth: Synth) -> None:
    zones = {
        s["Properties"]["AvailabilityZone"] for s in of_type(synth, "AWS::EC2::Subnet").values()
    }
    assert zones == set(AZS)
    synth.template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "ServiceName": {
                "Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".dynamodb"]]
            },
            "VpcEndpointType": "Gateway",
        },
    )
    synth.template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})


def test_every_log_group_has_a_retention(synth: Synth) -> None:
    synth.template.all_resources_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": DEPLOYED.log_retention_days}
    )


def test_outputs_give_the_api_url_and_the_table_names(synth: Synth) -> None:
    assert synth.outputs["EventsTableName"]["Value"] == {
        "Ref": table_id(synth, schema.DEFAULT_EVENTS_TABLE)
    }
    assert synth.outputs["KeysTableName"]["Value"] == {
        "Ref": table_id(synth, schema.DEFAULT_KEYS_TABLE)
    }
    assert "ApiUrl" in synth.outputs
    assert {"WorkerSecretArn", "LoadBalancerDns", "ApiLogGroup", "WorkerLogGroup"} <= set(
        synth.outputs
    )
