"""The synthesized services, network and outputs: properties, never logical ids (those are found
by property)."""

from __future__ import annotations

from service.cli import GRACEFUL_SHUTDOWN_SECONDS
from service.settings import load_settings
from service.store import schema
from tests.infra.conftest import (
    AZS,
    DEPLOYED,
    DOMAIN_NAME,
    REGION,
    Match,
    Synth,
    as_list,
    container_environment,
    of_type,
    only,
    statements_of_role,
    table_id,
    task_definition,
)
from worker.config import Settings as WorkerSettings
from worker.tenant import WIND_DOWN_CAP

LISTENER = "AWS::ElasticLoadBalancingV2::Listener"


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
    environment = container_environment(synth, "api")
    assert environment["TRIGGER_STORE"] == "dynamodb"
    assert environment["TRIGGER_EVENTS_TABLE"] == {
        "Ref": table_id(synth, schema.DEFAULT_EVENTS_TABLE)
    }
    assert environment["TRIGGER_KEYS_TABLE"] == {"Ref": table_id(synth, schema.DEFAULT_KEYS_TABLE)}
    assert environment["AWS_DEFAULT_REGION"] == REGION
    assert environment["FORWARDED_ALLOW_IPS"] == "*"
    assert (environment["TRIGGER_SHARDS"], environment["TRIGGER_TENANT_SHARDS"]) == ("1", "")
    assert api["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]


def test_the_shard_settings_reach_the_api_as_the_service_reads_them(synth_https: Synth) -> None:
    environment = container_environment(synth_https, "api")
    given = {name: value for name, value in environment.items() if isinstance(value, str)}

    settings = load_settings(environ=given)

    assert (settings.shards, settings.tenant_shards) == (4, "acme=16")


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
