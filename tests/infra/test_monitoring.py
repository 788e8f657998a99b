"""Alarms, their topic and the dashboard: what each alarm watches, when it fires, whom it tells."""

from __future__ import annotations

from typing import Any

import pytest

from infra.metrics import (
    DEAD,
    EVENTS_CREATED,
    IN_FLIGHT,
    NAMESPACE,
    OLDEST_AGE,
    SERVICE,
    SERVICE_ENV,
    UNDELIVERED,
)
from service.store import schema
from tests.infra.conftest import (
    DEPLOYED,
    Match,
    Synth,
    container_environment,
    of_type,
    only,
    table_id,
)
from tests.infra.metric_math import evaluate

ALARM = "AWS::CloudWatch::Alarm"


def topic(synth: Synth) -> str:
    return only(of_type(synth, "AWS::SNS::Topic"))[0]


def published_as(synth: Synth) -> Any:
    return container_environment(synth, "api")[SERVICE_ENV]


def alarm_on(synth: Synth, metric_name: str) -> dict[str, Any]:
    """The one alarm that reads `metric_name`, directly or in its metric math."""

    def reads(properties: dict[str, Any]) -> bool:
        names = [properties.get("MetricName")] + [
            q["MetricStat"]["Metric"]["MetricName"]
            for q in properties.get("Metrics", [])
            if "MetricStat" in q
        ]
        return metric_name in names

    return only(
        {k: v["Properties"] for k, v in of_type(synth, ALARM).items() if reads(v["Properties"])}
    )[1]


def test_the_api_names_its_metrics_after_the_stack(synth: Synth) -> None:
    service = published_as(synth)
    assert service == f"{synth.stack.stack_name}-api"
    assert synth.outputs["MetricsService"]["Value"] == service


def test_the_alarm_topic_is_encrypted_for_cloudwatch_ssl_only_and_an_output(
    synth: Synth,
) -> None:
    topic_id = topic(synth)
    key = only(of_type(synth, "AWS::KMS::Key"))[0]
    synth.template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}}
    )
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    synth.template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": cloudwatch,
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                                "Effect": "Allow",
                            }
                        )
                    ]
                )
            },
        },
    )
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ),
                        Match.object_like(
                            {"Effect": "Allow", "Principal": cloudwatch, "Action": "sns:Publish"}
                        ),
                    ]
                )
            },
        },
    )
    assert synth.outputs["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_every_alarm_tells_the_topic_when_it_fires_and_when_it_clears(synth: Synth) -> None:
    synth.template.resource_count_is(ALARM, 6)
    synth.template.all_resources_properties(
        ALARM,
        {"AlarmActions": [{"Ref": topic(synth)}], "OKActions": [{"Ref": topic(synth)}]},
    )


def test_an_old_undelivered_event_or_a_silent_publisher_fires_the_age_alarm(
    synth: Synth,
) -> None:
    synth.template.has_resource_properties(
        ALARM,
        {
            "Namespace": NAMESPACE,
            "MetricName": OLDEST_AGE,
            "Dimensions": [{"Name": SERVICE, "Value": published_as(synth)}],
            "Statistic": "Maximum",
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": DEPLOYED.alarm_oldest_age_seconds,
            "TreatMissingData": "breaching",
        },
    )


def test_the_first_dead_event_fires_the_dead_events_alarm(synth: Synth) -> None:
    synth.template.has_resource_properties(
        ALARM,
        {
            "Namespace": NAMESPACE,
            "MetricName": DEAD,
            "Dimensions": [{"Name": SERVICE, "Value": published_as(synth)}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "EvaluationPeriods": 1,
            "TreatMissingData": "ignore",
        },
    )


def test_the_5xx_alarm_reads_the_load_balancers_counts_over_5_minutes(synth: Synth) -> None:
    load_balancer = only(of_type(synth, "AWS::ElasticLoadBalancingV2::LoadBalancer"))[0]
    alarm = alarm_on(synth, "HTTPCode_Target_5XX_Count")
    assert alarm["Threshold"] == DEPLOYED.alarm_5xx_percent
    assert alarm["TreatMissingData"] == "notBreaching"
    stats = [q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q]
    assert sorted(s["Metric"]["MetricName"] for s in stats) == [
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "RequestCount",
    ]
    for stat in stats:
        assert stat["Metric"]["Dimensions"] == [
            {
                "Name": "LoadBalancer",
                "Value": {"Fn::GetAtt": [load_balancer, "LoadBalancerFullName"]},
            }
        ]
        assert (stat["Period"], stat["Stat"]) == (300, "Sum")


MIN = DEPLOYED.alarm_5xx_min_requests


@pytest.mark.parametrize(
    ("requests", "target_5xx", "elb_5xx", "percent"),
    [
        (1000, 5, None, 0.5),
        (1000, 20, None, 2),
        (1000, 10, 10, 2),  # 502/504 from the load balancer count as errors too
        (20, 1, None, 0),  # one error at 3 a.m.: too few requests to judge
        (MIN - 1, MIN - 1, None, 0),
        (MIN, 4, None, 400 / MIN),
        (None, None, 500, 100),  # no healthy task: all 503, and no RequestCount at all
        (None, None, None, 0),  # no traffic: no errors
    ],
)
def test_the_5xx_rate_is_a_percentage_from_a_minimum_of_requests(
    synth: Synth,
    requests: int | None,
    target_5xx: int | None,
    elb_5xx: int | None,
    percent: float,
) -> None:
    queries = alarm_on(synth, "HTTPCode_Target_5XX_Count")["Metrics"]
    ids = {q["MetricStat"]["Metric"]["MetricName"]: q["Id"] for q in queries if "MetricStat" in q}
    values = {
        ids["RequestCount"]: requests,
        ids["HTTPCode_Target_5XX_Count"]: target_5xx,
        ids["HTTPCode_ELB_5XX_Count"]: elb_5xx,
    }
    assert evaluate(queries, values) == pytest.approx(percent)


@pytest.mark.parametrize(
    ("table", "indexes"),
    [
        (schema.DEFAULT_EVENTS_TABLE, [index.name for index in schema.EVENTS.indexes]),
        (schema.DEFAULT_KEYS_TABLE, []),
    ],
)
def test_each_table_has_a_throttle_alarm_over_reads_and_writes_of_its_indexes_too(
    synth: Synth, table: str, indexes: list[str]
) -> None:
    ref = {"Ref": table_id(synth, table)}
    (alarm,) = [
        v["Properties"]
        for v in of_type(synth, ALARM).values()
        if any(
            {"Name": "TableName", "Value": ref} in q["MetricStat"]["Metric"]["Dimensions"]
            for q in v["Properties"].get("Metrics", [])
            if "MetricStat" in q
        )
    ]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (0, 5, 3)
    watched = sorted(
        (
            q["MetricStat"]["Metric"]["MetricName"],
            tuple(
                d["Value"]
                for d in q["MetricStat"]["Metric"]["Dimensions"]
                if d["Name"] == "GlobalSecondaryIndexName"
            ),
        )
        for q in alarm["Metrics"]
        if "MetricStat" in q
    )
    assert watched == sorted(
        (f"{kind}ThrottleEvents", index)
        for kind in ("Read", "Write")
        for index in [(), *((i,) for i in indexes)]
    )
    # Any throttle event counts; a metric DynamoDB leaves out (no throttles) counts as 0.
    one_throttle = {q["Id"]: None for q in alarm["Metrics"] if "MetricStat" in q}
    assert evaluate(alarm["Metrics"], one_throttle) == 0
    one_throttle[next(iter(one_throttle))] = 1
    assert evaluate(alarm["Metrics"], one_throttle) == 1


def test_unhealthy_api_tasks_for_three_minutes_fire_an_alarm(synth: Synth) -> None:
    target_group = only(of_type(synth, "AWS::ElasticLoadBalancingV2::TargetGroup"))[0]
    synth.template.has_resource_properties(
        ALARM,
        {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "UnHealthyHostCount",
            "Dimensions": Match.array_with(
                [
                    {
                        "Name": "TargetGroup",
                        "Value": {"Fn::GetAtt": [target_group, "TargetGroupFullName"]},
                    }
                ]
            ),
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 3,
            "Threshold": 0,
        },
    )


def dashboard_text(synth: Synth) -> str:
    body = only(of_type(synth, "AWS::CloudWatch::Dashboard"))[1]["Properties"]["DashboardBody"]
    return "".join(part for part in body["Fn::Join"][1] if isinstance(part, str))


@pytest.mark.parametrize(
    "shown",
    [
        f'"{NAMESPACE}","{EVENTS_CREATED}"',  # ingest rate
        '"RequestCount","LoadBalancer"',
        f'"{NAMESPACE}","{UNDELIVERED}"',  # backlog
        f'"{NAMESPACE}","{IN_FLIGHT}"',
        f'"{NAMESPACE}","{OLDEST_AGE}"',
        f'"{NAMESPACE}","{DEAD}"',
        f'MetricName=\\"{UNDELIVERED}\\"',  # per tenant
        f'MetricName=\\"{OLDEST_AGE}\\"',
        f'MetricName=\\"{DEAD}\\"',
        '"TargetResponseTime"',  # latency
        '"stat":"p50"',
        '"stat":"p99"',
        '"HTTPCode_Target_5XX_Count"',
        '"HTTPCode_ELB_5XX_Count"',
        '"ReadThrottleEvents"',
        '"WriteThrottleEvents"',
        '"RunningTaskCount"',  # worker scaling
    ],
)
def test_the_dashboard_shows(synth: Synth, shown: str) -> None:
    assert shown in dashboard_text(synth)
    assert synth.outputs["DashboardName"]["Value"] == {
        "Ref": only(of_type(synth, "AWS::CloudWatch::Dashboard"))[0]
    }


def test_the_dashboard_shows_every_alarm(synth: Synth) -> None:
    body = only(of_type(synth, "AWS::CloudWatch::Dashboard"))[1]["Properties"]["DashboardBody"]
    references = [part for part in body["Fn::Join"][1] if isinstance(part, dict)]
    alarms = set(of_type(synth, ALARM))
    shown = {part.get("Fn::GetAtt", [None])[0] for part in references} & alarms
    assert shown == alarms
